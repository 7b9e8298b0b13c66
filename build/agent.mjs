// `npm run build:agent`: the node agent as an ES module bundle in dist/agent/ (from tsc's output,
// dist/src/agent/main.js), which bin/nsdebug-agent.js runs and the image ships instead of
// dist/src and node_modules. Its metafile, dist/agent/meta.json, lists every input: the unit test
// test/unit/agent/bundle.test.ts holds it to the agent's side of the layering (no src/kube,
// src/cli, client-node or oclif), which eslint.config.js enforces import by import.
//
// - Split into chunks: main.ts imports each subcommand's modules on use (every session is a new
//   Node process), and the chunks keep that; `--help` loads one small file.
// - Two entries: nsdebug-agent.js runs the agent; libnsdebug.js is src/native/libnsdebug.ts with
//   its exports by name (main.ts imports it on use too), for the image build's check that the
//   library loads in the runtime tree (Dockerfile).
// - koffi stays a package (node_modules/koffi): it loads its native addon from its own directory.
// - The bundled CommonJS packages (@grpc/grpc-js, protobufjs) require() Node's builtins: each
//   chunk gets a `require` of its own.
// - Paths relative to a module (package.json, native/libnsdebug.so) are found from the package
//   root above the bundle (src/package.ts), not by counting `..`.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = `${ROOT}dist/agent`;

rmSync(OUT, { recursive: true, force: true });
const result = await esbuild.build({
  absWorkingDir: ROOT,
  entryPoints: { 'nsdebug-agent': 'dist/src/agent/main.js', libnsdebug: 'dist/src/native/libnsdebug.js' },
  outdir: OUT,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  minify: true,
  // stack traces and error names stay readable: NativeError, NsdebugError…
  keepNames: true,
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
  external: ['koffi'],
  banner: {
    js: "import { createRequire as nsdebugCreateRequire } from 'node:module'; const require = nsdebugCreateRequire(import.meta.url);",
  },
});
writeFileSync(`${OUT}/meta.json`, JSON.stringify(result.metafile));

// the bundled packages' licences, which the image would otherwise lose with their node_modules
const packages = [
  ...new Set(Object.keys(result.metafile.inputs).flatMap((f) => /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(f)?.[1] ?? [])),
].sort();
const licences = packages.map((dir) => {
  const { name, version, license } = JSON.parse(readFileSync(`${ROOT}${dir}/package.json`, 'utf8'));
  const file = readdirSync(`${ROOT}${dir}`).find((f) => /^(licen[cs]e|copying)/i.test(f));
  const text =
    file && existsSync(`${ROOT}${dir}/${file}`)
      ? readFileSync(`${ROOT}${dir}/${file}`, 'utf8').trim()
      : `(no licence file; package.json says ${license})`;
  return `${name}@${version} (${license})\n\n${text}\n`;
});
writeFileSync(`${OUT}/THIRD-PARTY-LICENSES.txt`, licences.join(`\n${'-'.repeat(78)}\n\n`));
