// The CLI on a Node.js older than package.json's engines: one line naming both versions, exit 64,
// before any dependency loads. Needs an older node on the machine (Debian's /usr/bin/node).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

import { execa } from 'execa';

const ROOT = new URL('../../..', import.meta.url).pathname;
const minimum = Number(/^>=\s*(\d+)/.exec(JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')).engines.node)?.[1]);
const major = (node: string) => Number(execFileSync(node, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }));
const OLD_NODE = ['/usr/bin/node', '/usr/bin/nodejs'].find((p) => existsSync(p) && major(p) < minimum);
if (!OLD_NODE) console.warn(`skipped: no Node.js older than ${minimum} on this machine to run the CLI with`);

describe('package.json engines', () => {
  test('asks for a supported LTS line (24 or newer)', () => expect(minimum).toBeGreaterThanOrEqual(24));
  test('the Node.js running the tests satisfies it', () =>
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(minimum));
});

(OLD_NODE ? describe : describe.skip)(`the CLI on an older Node.js (${OLD_NODE ?? 'none'})`, () => {
  test.each(['kubectl-nsdebug.js', 'kubectl_complete-nsdebug.js'])('%s refuses it in one line with exit 64', async (bin) => {
    expectRefusal(await execa(OLD_NODE!, [`${ROOT}/bin/${bin}`, '--help'], { reject: false }));
  });
  // the snapshot is not this node's: the wrappers start the .js, which refuses
  test.each(['kubectl-nsdebug', 'kubectl_complete-nsdebug'])('%s with it first on PATH refuses it the same way', async (bin) => {
    const env = { PATH: `${dirname(OLD_NODE!)}:/usr/bin:/bin` };
    expectRefusal(await execa(`${ROOT}/bin/${bin}`, ['--help'], { reject: false, env, extendEnv: false }));
  });
});

function expectRefusal(r: { exitCode?: number; stdout: string; stderr: string }): void {
  expect(r.exitCode).toBe(64);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`needs Node\\.js ${minimum} or newer, but ${OLD_NODE} is v\\d+\\.`));
}
