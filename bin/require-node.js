// The CLI's first step, before anything else loads: refuse a Node.js older than package.json's
// `engines` with one line instead of a stack trace from some dependency's newer API.
// Exit 64, like any other unusable invocation (README "Exit codes").
import { readFileSync } from 'node:fs';

export function requireNode(program) {
  const { engines } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const minimum = Number(/^>=\s*(\d+)/.exec(engines.node)?.[1]);
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= minimum) return;
  process.stderr.write(
    `${program}: needs Node.js ${minimum} or newer, but ${process.execPath} is ${process.version}; ` +
      `install a current LTS (https://nodejs.org) and put it first on PATH\n`,
  );
  process.exit(64);
}
