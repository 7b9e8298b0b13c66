// `npm run build:cli`: the CLI as one CommonJS file, dist/cli/nsdebug.cjs (from tsc's output,
// dist/src/cli/entry.js), and Node's start-up snapshot of it, dist/cli/snapshot.blob, with the
// node that built it recorded beside it (snapshot.node) for bin/kubectl-nsdebug to check.
//
// Why: loading oclif, the commands and client-node from node_modules took ~0.4 s before the first
// API request. A snapshot holds them already loaded and compiled; Node deserializes it instead.
// Node's snapshot builder cannot serialize the HTTP parser's and TLS's native state, and its
// deserialized main has no import() callback. So:
// - node:http/https/tls/http2 become lazy facades that load the real module on first use, at
//   run time, and hand out stand-ins for what is read from them while the snapshot builds; the
//   packages that extend their classes as they load are lazy facades too;
// - oclif's module loader asks the bundle first (src/cli/entry.ts) and require()s otherwise;
// - import.meta.url is the bundle's URL, set at run time (the package may have moved).
import { execFileSync } from 'node:child_process';
import { realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = `${ROOT}dist/cli`;
const require = createRequire(`${ROOT}package.json`);

/** Builtins whose native state a snapshot cannot hold. */
const LAZY_BUILTINS = new Set(['http', 'https', 'tls', 'http2']);
/**
 * Packages that use those builtins as they load in a way no stand-in can serve (a class
 * extending http.Agent): the snapshot build fails loudly ("lazy … touched while building") when
 * one is missing here. undici is not one: what it reads as it loads (IncomingMessage for
 * instanceof, http2's constants) the facades answer with stand-ins, so it is in the snapshot.
 */
const LAZY_FOR_BUILTINS = ['agent-base', 'hpagent', 'http-proxy-agent', 'https-proxy-agent', 'socks-proxy-agent', 'ws'];
/**
 * Modules that read the terminal or the environment as they load (colour support, the terminal's
 * width): loaded at snapshot time they would answer for the build's terminal forever. Found by
 * tracing process.env reads while the snapshot builds. (debug, which reads DEBUG, is called as
 * it loads: DEBUG=oclif:* needs NSDEBUG_SNAPSHOT=0.)
 */
const LAZY_FOR_TERMINAL = ['ansis', 'ansi-escapes', 'is-unicode-supported', 'supports-color', '@oclif/core/lib/screen.js'];
const LAZY_PACKAGES = new Set([...LAZY_FOR_BUILTINS, ...LAZY_FOR_TERMINAL.filter((m) => !m.endsWith('.js'))]);
const LAZY_FILES = LAZY_FOR_TERMINAL.filter((m) => m.endsWith('.js')).map((m) => `${ROOT}node_modules/${m}`);

/**
 * A CommonJS module standing for `real` (the module as the build sees it), loaded by `load` on
 * first use: a proxy that reads, calls and constructs through to it. Its own keys are the build's,
 * so esbuild's ESM interop can copy them without loading it. Read while the snapshot builds, a
 * function export is a stand-in that calls, constructs and answers instanceof through to the real
 * one at run time, and plain data (http2's constants) is the build's copy; anything else fails
 * the build.
 */
function lazyFacade(what, real, load) {
  const ownKeys = Object.getOwnPropertyNames(real).filter(
    (k) => typeof real !== 'function' || !['prototype', 'length', 'name', 'arguments', 'caller'].includes(k),
  );
  const functions = ownKeys.filter((k) => typeof real[k] === 'function');
  const data = Object.fromEntries(
    ownKeys.flatMap((k) => {
      if (typeof real[k] === 'function') return [];
      try {
        const json = JSON.stringify(real[k]);
        return json === undefined ? [] : [[k, JSON.parse(json)]];
      } catch {
        return [];
      }
    }),
  );
  return `let real;
const building = () => process.getBuiltinModule('node:v8').startupSnapshot.isBuildingSnapshot();
const get = () => {
  if (building()) throw new Error('lazy ${what} touched while building the snapshot: see LAZY_FOR_BUILTINS in build/cli.mjs');
  return (real ??= ${load});
};
const keys = ${JSON.stringify(ownKeys)};
const functions = ${JSON.stringify(functions)};
const data = ${JSON.stringify(data)};
const standIn = (key) =>
  new Proxy(function () {}, {
    apply: (_, self, args) => Reflect.apply(get()[key], self, args),
    construct: (_, args, newTarget) => Reflect.construct(get()[key], args, newTarget),
    get: (_, k) => (k === Symbol.hasInstance ? (v) => v instanceof get()[key] : get()[key][k]),
    set: (_, k, v) => Reflect.set(get()[key], k, v),
  });
const target = ${typeof real === 'function' ? 'function () {}' : '{}'};
// interop helpers ask this as they import: answered without loading
const esModule = ${JSON.stringify(Boolean(real.__esModule))};
const facade = new Proxy(target, {
  get: (_, key) => {
    if (key === '__esModule') return esModule;
    if (building() && functions.includes(key)) return standIn(key);
    if (building() && Object.hasOwn(data, key)) return data[key];
    return get()[key];
  },
  has: (_, key) => key in get(),
  ownKeys: () => [...keys, ...Reflect.ownKeys(target)],
  getOwnPropertyDescriptor: (_, key) =>
    Reflect.getOwnPropertyDescriptor(target, key) ?? (keys.includes(key) ? { configurable: true, enumerable: true, get: () => get()[key] } : undefined),
  apply: (_, self, args) => Reflect.apply(get(), self, args),
  construct: (_, args, newTarget) => Reflect.construct(get(), args, newTarget === facade ? get() : newTarget),
});
module.exports = facade;`;
}

const lazyModules = {
  name: 'lazy-modules',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      const bare = args.path.replace(/^node:/, '');
      if (LAZY_BUILTINS.has(bare)) return { path: bare, namespace: 'lazy-builtin' };
      if (args.namespace === 'lazy-package') return undefined;
      if (LAZY_PACKAGES.has(args.path))
        return { path: require.resolve(args.path, { paths: [args.resolveDir] }), namespace: 'lazy-package' };
      if (args.path.startsWith('.') && args.resolveDir) {
        const file = require.resolve(args.path, { paths: [args.resolveDir] });
        if (LAZY_FILES.includes(file)) return { path: file, namespace: 'lazy-package' };
      }
      return undefined;
    });
    build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
      contents: lazyFacade(`node:${args.path}`, require(`node:${args.path}`), `process.getBuiltinModule('node:${args.path}')`),
      loader: 'js',
    }));
    // the facade's own require of the package resolves normally: the package is bundled behind it
    build.onLoad({ filter: /.*/, namespace: 'lazy-package' }, (args) => ({
      contents: lazyFacade(args.path, require(args.path), `require(${JSON.stringify(args.path)})`),
      loader: 'js',
      resolveDir: ROOT,
    }));
  },
};

/** oclif imports the files package.json names (commands, help class, hooks): ask the bundle first. */
const oclifModuleLoader = {
  name: 'oclif-module-loader',
  setup(build) {
    build.onLoad({ filter: /@oclif[/\\]core[/\\]lib[/\\]module-loader\.js$/ }, async (args) => {
      const { readFile } = await import('node:fs/promises');
      const source = await readFile(args.path, 'utf8');
      const dynamic = 'isESM ? await import((0, node_url_1.pathToFileURL)(filePath).href) : require(filePath)';
      const count = source.split(dynamic).length - 1;
      if (count !== 3) throw new Error(`@oclif/core's module-loader.js changed: ${count} of 3 loads found; see build/cli.mjs`);
      return { contents: source.replaceAll(dynamic, 'globalThis.nsdebugLoadModule(filePath)'), loader: 'js' };
    });
  },
};

rmSync(OUT, { recursive: true, force: true });
const result = await esbuild.build({
  absWorkingDir: ROOT,
  entryPoints: ['dist/src/cli/entry.js'],
  outfile: `${OUT}/nsdebug.cjs`,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  minify: true,
  keepNames: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  define: { 'import.meta.url': 'globalThis.nsdebugModuleUrl' },
  // the snapshot builder runs the bundle as a script, without `module`; entry.ts resets this
  banner: { js: "globalThis.nsdebugModuleUrl ??= require('node:url').pathToFileURL(__filename).href;" },
  // oclif reads tsconfig.json with it only to transpile, which main.ts turns off
  external: ['typescript'],
  plugins: [lazyModules, oclifModuleLoader],
});
writeFileSync(`${OUT}/meta.json`, JSON.stringify(result.metafile));

// the snapshot is only valid for this node binary: bin/kubectl-nsdebug checks snapshot.node
const node = realpathSync(process.execPath);
execFileSync(node, ['--snapshot-blob', `${OUT}/snapshot.blob`, '--build-snapshot', `${OUT}/nsdebug.cjs`], {
  cwd: ROOT,
  env: { ...process.env, NODE_OPTIONS: '' },
  stdio: ['ignore', 'inherit', 'inherit'],
});
writeFileSync(`${OUT}/snapshot.node`, `${node}\n`);
