// How the executables start: bin/kubectl-nsdebug (sh) runs Node from the CLI's start-up snapshot
// when the node on PATH built it, else the same bundle from its file; both give the same
// answers. Seen from outside: the wrapper's own trace (sh -x) and what the user sees.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { execa } from 'execa';

import commands from '../../../src/cli/commands.js';
import { DEFAULT_COMMAND_ID } from '../../../src/cli/default-command.js';

const ROOT = new URL('../../..', import.meta.url).pathname.replace(/\/$/, '');
const SNAPSHOT = join(ROOT, 'dist', 'cli', 'snapshot.blob');
const built = existsSync(SNAPSHOT);
if (!built) console.warn('skipping the start-up tests: the snapshot is not built (npm run build)');
const maybe = built ? describe : describe.skip;
const VERSION = /^nsdebug\/\d+\.\d+\.\d+ linux-x64 node-v\d+/;

/** PATH with the node running the tests (the one `npm run build` used) first. */
const PATH = `${dirname(process.execPath)}:/usr/bin:/bin`;
const traced = (bin: string, args: string[]) =>
  execa('sh', ['-x', bin, ...args], { reject: false, env: { PATH, NO_COLOR: '1' }, extendEnv: false });
const execLine = (stderr: string) => stderr.split('\n').find((l) => l.startsWith('+ exec ')) ?? '';

describe('the command table', () => {
  test('holds every file in commands/ (a topic directory: TOPIC:FILE), index as the default command', () => {
    const files = readdirSync(join(ROOT, 'commands'), { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile())
      .map((f) =>
        join(f.parentPath, f.name)
          .slice(join(ROOT, 'commands').length + 1)
          .replace(/\.ts$/, '')
          .replace('/', ':'),
      );
    const ids = Object.keys(commands).map((id) => (id === DEFAULT_COMMAND_ID ? 'index' : id));
    expect(ids.sort()).toEqual(files.sort());
  });
});

maybe('bin/kubectl-nsdebug', () => {
  let other: string;
  beforeAll(() => {
    // the package as installed elsewhere, with a snapshot some other node built
    other = mkdtempSync(join(tmpdir(), 'nsdebug-start-'));
    mkdirSync(join(other, 'bin'));
    mkdirSync(join(other, 'dist', 'cli'), { recursive: true });
    for (const f of [
      'kubectl-nsdebug',
      'kubectl-nsdebug.js',
      'kubectl_complete-nsdebug',
      'kubectl_complete-nsdebug.js',
      'require-node.js',
    ]) {
      copyFileSync(join(ROOT, 'bin', f), join(other, 'bin', f));
    }
    for (const f of ['nsdebug.cjs', 'snapshot.blob']) symlinkSync(join(ROOT, 'dist', 'cli', f), join(other, 'dist', 'cli', f));
    writeFileSync(join(other, 'dist', 'cli', 'snapshot.node'), '/bin/sh\n');
    copyFileSync(join(ROOT, 'package.json'), join(other, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(other, 'node_modules'));
    // npm's bin link: a symlink elsewhere on PATH
    mkdirSync(join(other, 'links'));
    symlinkSync(join(ROOT, 'bin', 'kubectl-nsdebug'), join(other, 'links', 'kubectl-nsdebug'));
  });
  afterAll(() => rmSync(other, { recursive: true, force: true }));

  test('starts from the snapshot when the node on PATH built it', async () => {
    const r = await traced(join(ROOT, 'bin', 'kubectl-nsdebug'), ['--version']);
    expect(execLine(r.stderr)).toBe(`+ exec ${process.execPath} --snapshot-blob ${SNAPSHOT} ${ROOT}/bin/kubectl-nsdebug --version`);
    expect(r.stdout).toMatch(VERSION);
    expect(r.exitCode).toBe(0);
  });

  test('through a symlink (npm bin link), from the package the link points into', async () => {
    const r = await traced(join(other, 'links', 'kubectl-nsdebug'), ['--version']);
    expect(execLine(r.stderr)).toContain(`--snapshot-blob ${SNAPSHOT} ${ROOT}/bin/kubectl-nsdebug --version`);
    expect(r.stdout).toMatch(VERSION);
  });

  test('loads the bundle from its file when another node built the snapshot, with the same answers', async () => {
    const fallback = await traced(join(other, 'bin', 'kubectl-nsdebug'), ['--help']);
    expect(execLine(fallback.stderr)).toBe(`+ exec ${process.execPath} ${other}/bin/kubectl-nsdebug.js --help`);
    const snapshot = await traced(join(ROOT, 'bin', 'kubectl-nsdebug'), ['--help']);
    expect(execLine(snapshot.stderr)).toContain('--snapshot-blob');
    expect(fallback.stdout).toContain('kubectl nsdebug TARGET');
    expect(fallback.stdout).toBe(snapshot.stdout);
    expect([fallback.exitCode, snapshot.exitCode]).toEqual([0, 0]);
  });

  test('without a record of the node that built the snapshot: the bundle from its file, quietly', async () => {
    const record = join(other, 'dist', 'cli', 'snapshot.node');
    rmSync(record);
    try {
      const r = await execa(join(other, 'bin', 'kubectl-nsdebug'), ['--version'], { env: { PATH }, extendEnv: false });
      expect(r.stdout).toMatch(VERSION);
      expect(r.stderr).toBe('');
    } finally {
      writeFileSync(record, '/bin/sh\n');
    }
  });

  test('a terminal gets the same help from both: its width and colours, read at run time', async () => {
    // script(1) gives the CLI a pty 150 columns wide; the snapshot was built without one
    const atTerminal = (bin: string) =>
      execa('script', ['-qfec', `stty cols 150; ${bin} --help`, '/dev/null'], {
        env: { PATH, TERM: 'xterm' },
        extendEnv: false,
        reject: false,
      });
    const snapshot = await atTerminal(join(ROOT, 'bin', 'kubectl-nsdebug'));
    const fallback = await atTerminal(join(other, 'bin', 'kubectl-nsdebug'));
    expect(snapshot.stdout).toContain('\x1b[1mUSAGE');
    expect(snapshot.stdout.split('\n').some((l) => l.length > 100)).toBe(true);
    expect(snapshot.stdout).toBe(fallback.stdout);
  });

  test("at a terminal, a flag relation oclif checks is one plain line: oclif's dimming is not printed as text", async () => {
    const refused = await execa('script', ['-qfec', `${join(ROOT, 'bin', 'kubectl-nsdebug')} pod/x --privileged --user=0`, '/dev/null'], {
      env: { PATH, TERM: 'xterm' },
      extendEnv: false,
      reject: false,
    });
    expect(refused.stdout.trim()).toBe('error: --user=0 cannot also be provided when using --privileged');
    expect(refused.exitCode).toBe(64);
  });

  test('NO_COLOR and NSDEBUG_SNAPSHOT=0 are honoured', async () => {
    const env = { PATH, TERM: 'xterm', NO_COLOR: '1' };
    const plain = await execa('script', ['-qfec', `${join(ROOT, 'bin', 'kubectl-nsdebug')} --help`, '/dev/null'], {
      env,
      extendEnv: false,
    });
    expect(plain.stdout).not.toContain('\x1b[');
    const skipped = await execa('sh', ['-x', join(ROOT, 'bin', 'kubectl-nsdebug'), '--version'], {
      env: { PATH, NSDEBUG_SNAPSHOT: '0' },
      extendEnv: false,
    });
    expect(execLine(skipped.stderr)).toBe(`+ exec ${process.execPath} ${ROOT}/bin/kubectl-nsdebug.js --version`);
  });

  test('completion starts the same way and answers the same', async () => {
    const args = ['__complete', 'p'];
    const snapshot = await traced(join(ROOT, 'bin', 'kubectl_complete-nsdebug'), args);
    const fallback = await traced(join(other, 'bin', 'kubectl_complete-nsdebug'), args);
    expect(execLine(snapshot.stderr)).toContain('--snapshot-blob');
    expect(execLine(fallback.stderr)).toContain('kubectl_complete-nsdebug.js');
    expect(snapshot.stdout).toContain('ps\n');
    expect(fallback.stdout).toBe(snapshot.stdout);
  });

  test('a usage error is the same one line and exit code from both', async () => {
    const snapshot = await traced(join(ROOT, 'bin', 'kubectl-nsdebug'), ['pod/x', '--ns', 'bogus']);
    const fallback = await traced(join(other, 'bin', 'kubectl-nsdebug'), ['pod/x', '--ns', 'bogus']);
    const lastLine = (s: string) =>
      s
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('+ '))
        .join('\n');
    expect(lastLine(snapshot.stderr)).toMatch(/^error: .*--ns/);
    expect(lastLine(fallback.stderr)).toBe(lastLine(snapshot.stderr));
    expect(snapshot.exitCode).toBe(64);
    expect(fallback.exitCode).toBe(64);
  });
});
