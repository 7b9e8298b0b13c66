// A lockfile that installs on a fresh machine: npm 11 can write entries for other platforms'
// optional packages with no version or integrity (npm/cli PR #9343), which `npm ci` then rejects
// with "Invalid Version:" on a machine whose cache does not hide it. Every installed entry must
// carry both; `resolved` stays omitted (omit-lockfile-registry-resolved in .npmrc).
import { readFileSync } from 'node:fs';

const ROOT = new URL('../../..', import.meta.url).pathname;
const read = (file: string) => JSON.parse(readFileSync(`${ROOT}/${file}`, 'utf8'));

interface LockEntry {
  version?: string;
  integrity?: string;
  resolved?: string;
  link?: boolean;
}
const lock = read('package-lock.json') as { lockfileVersion: number; packages: Record<string, LockEntry> };
const installed = Object.entries(lock.packages).filter(([path, entry]) => path !== '' && !entry.link);

describe('package-lock.json', () => {
  test('is a v3 lockfile with packages', () => {
    expect(lock.lockfileVersion).toBe(3);
    expect(installed.length).toBeGreaterThan(100);
  });

  test('every package entry has a version and an sha512 integrity (no stubs npm ci rejects)', () => {
    const stubs = installed.filter(([, e]) => !e.version || !/^sha512-[A-Za-z0-9+/]{86}==$/.test(e.integrity ?? '')).map(([p]) => p);
    expect(stubs).toEqual([]);
  });

  test('no entry records a registry URL (resolved is omitted, as .npmrc says)', () => {
    expect(installed.filter(([, e]) => e.resolved !== undefined).map(([p]) => p)).toEqual([]);
    expect(readFileSync(`${ROOT}/.npmrc`, 'utf8')).toMatch(/^omit-lockfile-registry-resolved=true$/m);
  });

  test('the root entry matches package.json', () => {
    const pkg = read('package.json') as { dependencies: object; devDependencies: object; engines: object };
    const root = lock.packages[''] as unknown as { dependencies: object; devDependencies: object; engines: object };
    expect([root.dependencies, root.devDependencies, root.engines]).toEqual([pkg.dependencies, pkg.devDependencies, pkg.engines]);
  });
});
