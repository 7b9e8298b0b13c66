import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// ---- layering: which code may import what (README "Layout") ----
// Each entry: a regex over the import specifier as written, and the fix. no-restricted-imports
// checks `import` and `export … from`; the ImportExpression selector checks `import('…')` with
// a literal path, the way src/agent and commands/ load their heavier modules lazily.

/** a relative specifier into one of src/'s directories, from a file under src/ */
const into = (dir) => `^\\.{1,2}/(?:\\.\\./)*${dir}/`;

const KOFFI = { regex: '^koffi(?:/|$)', message: 'only src/native/libnsdebug.ts loads koffi; depend on its NativeLibrary interface' };
const CLIENT_NODE = {
  regex: '^@kubernetes/',
  message: "client-node is src/kube's alone (the agent reaches the API through src/agent/apiserver.ts)",
};
const OCLIF = { regex: '^@oclif/', message: "oclif is the CLI's: keep it in commands/ and src/cli" };
const KUBE = {
  regex: into('kube'),
  message: "src/kube is the CLI's client-node side; share pure code through a top-level src/*.ts (src/pod.ts)",
};
const CLI = { regex: into('cli'), message: "src/cli is the CLI's; share pure code through a top-level src/*.ts" };
const AGENT = { regex: into('agent'), message: 'src/agent is the node-side agent; the shared modules must not depend on it' };
const NATIVE = { regex: into('native'), message: 'only the agent loads the native library' };
// commands/ hands a plain options object to src/cli, which alone reaches src/kube and the rest.
const COMMANDS_SRC = {
  regex: '^\\.\\./src/(?!cli/)',
  message: 'commands/ imports src/cli only: move the logic behind src/cli',
};

const layer = (files, restrictions, ignores = []) => ({
  files,
  ignores,
  rules: {
    'no-restricted-imports': ['error', { patterns: restrictions.map(({ regex, message }) => ({ regex, message })) }],
    'no-restricted-syntax': [
      'error',
      ...restrictions.map(({ regex, message }) => ({
        selector: `ImportExpression > Literal[value=/${regex.replaceAll('/', '\\/')}/]`,
        message,
      })),
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'test-results/', 'deploy/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', Buffer: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // A later entry replaces an earlier one's options for the files both match: each repeats KOFFI.
  layer(['**/*.{ts,js,mjs}'], [KOFFI], ['src/native/**']),
  // the agent, bundled alone into its image (build/agent.mjs): nothing of the CLI's side
  layer(['src/agent/**'], [KUBE, CLI, CLIENT_NODE, OCLIF, KOFFI]),
  layer(['src/native/**'], [KUBE, CLI, CLIENT_NODE, OCLIF]),
  // the modules both sides import (contract, errors, duration, pod, text, names…): neither side's
  layer(['src/*.ts'], [KUBE, CLI, AGENT, NATIVE, CLIENT_NODE, OCLIF, KOFFI]),
  layer(['commands/**'], [COMMANDS_SRC, CLIENT_NODE, KOFFI]),
);
