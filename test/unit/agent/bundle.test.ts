// The agent's bundle (build/agent.mjs → dist/agent/), judged by the metafile esbuild writes beside
// it. The privileged image carries this bundle and koffi and no other package, so nothing of the
// CLI's side (src/kube, src/cli, client-node, oclif) may be in it, and nothing may be left to
// resolve at run time but Node's builtins and koffi. eslint.config.js checks each import; this,
// what they add up to. Built here when missing or older than tsc's output (tsc runs first when
// dist/src is missing too), as `npm run build:ts && npm run build:agent` would.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';

const ROOT = new URL('../../..', import.meta.url).pathname;
const TSC_ENTRY = join(ROOT, 'dist/src/agent/main.js');
const META = join(ROOT, 'dist/agent/meta.json');

/** The parts of esbuild's metafile read here; paths are relative to the package root. */
interface Metafile {
  inputs: Record<string, { bytes: number }>;
  outputs: Record<string, { bytes: number; entryPoint?: string; imports: Array<{ path: string; kind: string; external?: boolean }> }>;
}

function buildIfNeeded(): void {
  const run = (args: string[]) => execFileSync(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (!existsSync(TSC_ENTRY)) run([join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
  if (!existsSync(META) || statSync(META).mtimeMs < statSync(TSC_ENTRY).mtimeMs) run(['build/agent.mjs']);
}

buildIfNeeded();
const meta = JSON.parse(readFileSync(META, 'utf8')) as Metafile;
const inputs = Object.keys(meta.inputs);
const externals = [...new Set(Object.values(meta.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path)))];

describe("the agent's bundle", () => {
  test('is built from the agent, the native library and the shared modules', () => {
    expect(inputs).toEqual(expect.arrayContaining(['dist/src/agent/main.js', 'dist/src/native/libnsdebug.js', 'dist/src/pod.js']));
    // the two entries by their names (the chunks main.ts imports on use are entries of esbuild's too)
    expect(meta.outputs['dist/agent/nsdebug-agent.js']?.entryPoint).toBe('dist/src/agent/main.js');
    expect(meta.outputs['dist/agent/libnsdebug.js']?.entryPoint).toBe('dist/src/native/libnsdebug.js');
  });

  test.each([
    ['src/kube (the CLI’s client-node side)', /(^|\/)src\/kube\//],
    ['src/cli', /(^|\/)src\/cli\//],
    ['@kubernetes/client-node', /(^|\/)node_modules\/@kubernetes\//],
    ['oclif', /(^|\/)node_modules\/@oclif\//],
    ['execa, js-yaml (the CLI’s packages)', /(^|\/)node_modules\/(execa|js-yaml)\//],
    ['koffi, which stays a package', /(^|\/)node_modules\/(koffi|@koromix)\//],
  ])('holds nothing of %s', (_, pattern) => {
    expect(inputs.filter((p) => pattern.test(p))).toEqual([]);
  });

  test('leaves only Node builtins and koffi to resolve at run time: the image has no other package', () => {
    const builtin = (p: string) => p.startsWith('node:') || builtinModules.includes(p);
    expect(externals.filter((p) => !builtin(p))).toEqual(['koffi']);
  });

  test('runs: bin/nsdebug-agent.js --help', () => {
    const out = execFileSync(process.execPath, [join(ROOT, 'bin/nsdebug-agent.js'), '--help'], { encoding: 'utf8' });
    expect(out).toMatch(/^usage: nsdebug-agent enter /);
  });
});
