// The terminal (raw mode, size, restoration on every way out), progress, the agent-line
// watcher, and the one place failures are printed.
import { EventEmitter } from 'node:events';

import { failureOf } from '../../../src/cli/failure.js';
import { subcommandFirst, wantsDebug } from '../../../src/cli/main.js';
import { AgentLineWatcher, formatColumns } from '../../../src/cli/output.js';
import { createProgress } from '../../../src/cli/progress.js';
import { localTerminal, withTerminal, type SignalHost } from '../../../src/cli/terminal.js';
import { ExitCode } from '../../../src/contract.js';
import { NsdebugError } from '../../../src/errors.js';
import { FakeOutput } from './fakes.js';

class FakeTtyIn {
  isTTY = true;
  modes: boolean[] = [];
  setRawMode(mode: boolean) {
    this.modes.push(mode);
  }
}

class FakeTtyOut extends EventEmitter {
  isTTY = true;
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
  }
}

class FakeSignalHost extends EventEmitter implements SignalHost {
  exits: number[] = [];
  exit(code: number): never {
    this.exits.push(code);
    throw new Error(`exit ${code}`);
  }
}

describe('localTerminal', () => {
  test('size and resize from the first terminal output', () => {
    const out = new FakeTtyOut(132, 43);
    const term = localTerminal(new FakeTtyIn(), [{ isTTY: false, on: () => 0, off: () => 0 }, out]);
    expect(term.size()).toEqual({ cols: 132, rows: 43 });
    const seen: string[] = [];
    const off = term.onResize(() => seen.push(`${out.columns}x${out.rows}`));
    out.columns = 100;
    out.emit('resize');
    off();
    out.emit('resize');
    expect(seen).toEqual(['100x43']);
  });
  test('no terminal output: no size, resize is a no-op', () => {
    const term = localTerminal(new FakeTtyIn(), []);
    expect(term.size()).toBeUndefined();
    expect(() => term.onResize(() => undefined)()).not.toThrow();
  });
  test('raw mode entered once and left once', () => {
    const input = new FakeTtyIn();
    const term = localTerminal(input, []);
    term.restore();
    term.makeRaw();
    term.makeRaw();
    term.restore();
    term.restore();
    expect(input.modes).toEqual([true, false]);
  });
  test('stdin that is not a terminal is never put in raw mode', () => {
    const input = new FakeTtyIn();
    input.isTTY = false;
    localTerminal(input, []).makeRaw();
    expect(input.modes).toEqual([]);
  });
});

describe('withTerminal restores the terminal on every way out', () => {
  const setup = () => {
    const input = new FakeTtyIn();
    const host = new FakeSignalHost();
    const term = localTerminal(input, []);
    return { input, host, term };
  };
  test('normal end', async () => {
    const { input, host, term } = setup();
    expect(await withTerminal(term, async () => (term.makeRaw(), 5), host)).toBe(5);
    expect(input.modes).toEqual([true, false]);
    expect(host.listenerCount('SIGTERM') + host.listenerCount('exit')).toBe(0);
  });
  test('an error', async () => {
    const { input, host, term } = setup();
    await expect(withTerminal(term, async () => (term.makeRaw(), Promise.reject(new Error('x'))), host)).rejects.toThrow('x');
    expect(input.modes).toEqual([true, false]);
  });
  test.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ])('%s: restored, then exit %d', async (signal, code) => {
    const { input, host, term } = setup();
    await withTerminal(
      term,
      async () => {
        term.makeRaw();
        expect(() => host.emit(signal)).toThrow(`exit ${code}`);
      },
      host,
    );
    expect(host.exits).toEqual([code]);
    expect(input.modes).toEqual([true, false]);
  });
  test('process exit as the last resort', async () => {
    const { input, host, term } = setup();
    await withTerminal(
      term,
      async () => {
        term.makeRaw();
        host.emit('exit');
      },
      host,
    );
    expect(input.modes).toEqual([true, false]);
  });
  test('no terminal: the session just runs', async () => {
    expect(await withTerminal(undefined, async () => 1)).toBe(1);
  });
});

describe('progress', () => {
  test('steps overwrite each other and are erased before a note', () => {
    const out = new FakeOutput();
    const p = createProgress(out, { enabled: true });
    p.step('resolving');
    p.step('connecting');
    p.note('Defaulted container "a" out of: a, b');
    p.clear();
    expect(out.text()).toBe('\r\x1b[2Kresolving…\r\x1b[2Kconnecting…\r\x1b[2KDefaulted container "a" out of: a, b\n');
  });
  test('disabled: only notes; quiet: nothing', () => {
    const out = new FakeOutput();
    const p = createProgress(out, { enabled: false });
    p.step('resolving');
    p.note('note');
    p.clear();
    expect(out.text()).toBe('note\n');
    const quiet = new FakeOutput();
    createProgress(quiet, { enabled: false, quiet: true }).note('x');
    expect(quiet.text()).toBe('');
  });
});

describe('AgentLineWatcher', () => {
  test("passes everything through and keeps the agent's own lines", async () => {
    const out = new FakeOutput();
    const w = new AgentLineWatcher(out);
    w.write('hello\nnsdebug-agent: the container has ');
    w.write('no shell: running busybox\r\n$ ');
    w.write('\rnsdebug-agent: session ended\n');
    await new Promise<void>((r) => w.end(r));
    expect(out.text()).toBe('hello\nnsdebug-agent: the container has no shell: running busybox\r\n$ \rnsdebug-agent: session ended\n');
    expect(w.lines).toEqual(['the container has no shell: running busybox', 'session ended']);
  });
});

describe('formatColumns', () => {
  test('kubectl-style padding, last column unpadded', () =>
    expect(formatColumns(['A', 'LONGER'], [['xx', 'y']])).toBe('A    LONGER\nxx   y\n'));
});

describe('failureOf: one line, one exit code', () => {
  test('NsdebugError', () =>
    expect(failureOf(new NsdebugError('pod x not found in namespace demo', ExitCode.NOT_FOUND))).toEqual({
      line: 'error: pod x not found in namespace demo',
      exitCode: ExitCode.NOT_FOUND,
    }));
  test('a bug: internal, no stack unless --debug', () => {
    const bug = new TypeError('cannot read properties of undefined');
    expect(failureOf(bug)).toEqual({ line: 'error: internal: cannot read properties of undefined', exitCode: ExitCode.INTERNAL });
    expect(failureOf(bug, true).line).toContain('at ');
  });
  test("oclif's exit: nothing printed", () =>
    expect(failureOf(Object.assign(new Error('EEXIT: 3'), { code: 'EEXIT', oclif: { exit: 3 } }))).toEqual({ exitCode: 3 }));
  test('wantsDebug: --debug before --, or NSDEBUG_DEBUG=1', () => {
    expect(wantsDebug(['pod/x', '--debug'], {})).toBe(true);
    expect(wantsDebug(['pod/x', '--', 'x', '--debug'], {})).toBe(false);
    expect(wantsDebug(['pod/x'], { NSDEBUG_DEBUG: '1' })).toBe(true);
  });

  test.each([
    [
      ['-n', 'demo', 'ps', 'pod/x'],
      ['ps', '-n', 'demo', 'pod/x'],
    ],
    [
      ['--context', 'prod', '--namespace=demo', 'ps', 'x', '-o', 'json'],
      ['ps', '--context', 'prod', '--namespace=demo', 'x', '-o', 'json'],
    ],
    [
      ['--debug', 'status'],
      ['status', '--debug'],
    ],
    [
      ['ps', 'pod/x'],
      ['ps', 'pod/x'],
    ],
    [
      ['-n', 'demo', 'pod/ps'],
      ['-n', 'demo', 'pod/ps'],
    ],
    [
      ['-n', 'demo', 'pod/x', '--', 'ps'],
      ['-n', 'demo', 'pod/x', '--', 'ps'],
    ],
    [
      ['-n', 'ps', 'pod/x'],
      ['-n', 'ps', 'pod/x'],
    ],
  ])('kubectl-style global flags before the subcommand: %j → %j', (argv, expected) => {
    expect(subcommandFirst(argv, (word) => ['ps', 'status', 'install', 'uninstall'].includes(word))).toEqual(expected);
  });
});
