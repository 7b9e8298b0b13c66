// The exec stream over a fake transport: the request path, channel routing, stdin and its
// half-close, terminal size, the exit status (client-node's V1Status), and every way it fails.
import { PassThrough, Writable } from 'node:stream';

import { ExitCode } from '../../../src/contract.js';
import { NsdebugError } from '../../../src/errors.js';
import {
  Channel,
  ExecStream,
  connectFailure,
  execPath,
  exitCodeOfStatus,
  type ExecRequest,
  type TerminalSize,
} from '../../../src/kube/exec.js';
import { failure, FakeSocket, FakeTransport } from './fakes.js';

class FakeOutput extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void) {
    this.chunks.push(chunk);
    cb();
  }
  text() {
    return Buffer.concat(this.chunks).toString();
  }
}

class FakeTerminal {
  private listeners: Array<() => void> = [];
  constructor(public current: TerminalSize | undefined = { cols: 80, rows: 24 }) {}
  size() {
    return this.current;
  }
  onResize(listener: () => void) {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }
  resize(cols: number, rows: number) {
    this.current = { cols, rows };
    this.listeners.forEach((l) => l());
  }
  get subscribed() {
    return this.listeners.length;
  }
}

const base = (extra: Partial<ExecRequest> = {}): ExecRequest => ({
  namespace: 'nsdebug-system',
  pod: 'nsdebug-agent-x',
  container: 'agent',
  command: ['nsdebug-agent', 'enter', '--', 'sh', '-c', 'echo "a b" && exit 7'],
  stdout: new FakeOutput(),
  tty: false,
  describe: 'the nsdebug agent on node n1',
  ...extra,
});

const tick = () => new Promise((r) => setImmediate(r));

describe('execPath', () => {
  test('argv as repeated command= parameters, never a shell string', () => {
    const path = execPath({
      namespace: 'nsdebug-system',
      pod: 'a-1',
      container: 'agent',
      command: ['sh', '-c', 'echo "$x" & ls'],
      tty: false,
      stdin: false,
    });
    expect(path.split('?')[0]).toBe('/api/v1/namespaces/nsdebug-system/pods/a-1/exec');
    const q = new URLSearchParams(path.split('?')[1]);
    expect(q.getAll('command')).toEqual(['sh', '-c', 'echo "$x" & ls']);
    expect(Object.fromEntries([...q].filter(([k]) => k !== 'command'))).toEqual({
      container: 'agent',
      stdin: 'false',
      stdout: 'true',
      stderr: 'true',
      tty: 'false',
    });
  });
  test('with a TTY stderr is merged, as kubectl asks for it', () => {
    const q = new URLSearchParams(
      execPath({ namespace: 'n', pod: 'p', container: 'c', command: ['sh'], tty: true, stdin: true }).split('?')[1],
    );
    expect([q.get('stdin'), q.get('stderr'), q.get('tty')]).toEqual(['true', 'false', 'true']);
  });
});

describe('exitCodeOfStatus (V1Status on the error channel)', () => {
  test('Success → 0', () => expect(exitCodeOfStatus({ status: 'Success' })).toBe(0));
  test.each([1, 7, 68, 127, 255])('NonZeroExitCode %d → %d', (code) => {
    expect(
      exitCodeOfStatus({
        status: 'Failure',
        reason: 'NonZeroExitCode',
        details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
      }),
    ).toBe(code);
  });
  test.each([
    [
      { status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: 'x' }] } },
      ExitCode.INTERNAL,
      'unreadable exit code "x"',
    ],
    [
      { status: 'Failure', message: 'failed to exec in container: exec: "nsdebug-agent": executable file not found in $PATH' },
      ExitCode.AGENT_UNAVAILABLE,
      'the agent image has no nsdebug-agent',
    ],
    [
      { status: 'Failure', message: 'container not found ("agent")' },
      ExitCode.AGENT_UNAVAILABLE,
      'exec into the target failed: container not found ("agent"); see `kubectl nsdebug status`',
    ],
  ])('%j', (status, code, message) => {
    try {
      exitCodeOfStatus(status);
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(NsdebugError);
      expect((err as NsdebugError).exitCode).toBe(code);
      expect((err as NsdebugError).message).toContain(message);
    }
  });
});

describe('connectFailure (the WebSocket handshake)', () => {
  const req = { namespace: 'nsdebug-system', pod: 'a-1', describe: 'the nsdebug agent on node n1' };
  test.each([
    [401, ExitCode.FORBIDDEN, 'rejected your credentials'],
    [
      403,
      ExitCode.FORBIDDEN,
      'you may not exec into the nsdebug agent on node n1: missing permission create pods/exec in namespace nsdebug-system; ask your cluster admin to bind the nsdebug-user role',
    ],
    [404, ExitCode.AGENT_UNAVAILABLE, 'is gone (404)'],
    [400, ExitCode.AGENT_UNAVAILABLE, 'refused to exec'],
    [500, ExitCode.API_UNREACHABLE, "the node's kubelet may be unreachable"],
    [418, ExitCode.INTERNAL, 'answered 418'],
  ])('HTTP %d', (status, code, message) => {
    const err = connectFailure(new Error(`Unexpected server response: ${status}`), req);
    expect(err.exitCode).toBe(code);
    expect(err.message).toContain(message);
  });
  test('a refused connection', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
    const err = connectFailure(
      { message: refused.message, error: refused },
      { ...req, where: { server: 'https://127.0.0.1:6443', context: 'kind', requestTimeoutMs: 30000 } },
    );
    expect(err.exitCode).toBe(ExitCode.API_UNREACHABLE);
    expect(err.message).toBe(
      'cannot reach the API server at https://127.0.0.1:6443 (ECONNREFUSED); check that the cluster is up and that context "kind" is the right one (--context)',
    );
  });
});

describe('ExecStream', () => {
  test('routes stdout and stderr and returns the remote exit code', async () => {
    const transport = new FakeTransport((s) => {
      s.serve(Channel.STDOUT, 'out');
      s.serve(Channel.STDERR, 'err');
      s.serve(Channel.STDOUT, '');
      s.exit(7);
    });
    const stdout = new FakeOutput();
    const stderr = new FakeOutput();
    expect(await new ExecStream(transport).run(base({ stdout, stderr }))).toBe(7);
    expect([stdout.text(), stderr.text()]).toEqual(['out', 'err']);
    expect(transport.command()).toEqual(['nsdebug-agent', 'enter', '--', 'sh', '-c', 'echo "a b" && exit 7']);
    expect(transport.socket?.closed).toBe(true);
  });

  test('Success → 0; stderr falls back to stdout when not given', async () => {
    const stdout = new FakeOutput();
    const code = await new ExecStream(
      new FakeTransport((s) => {
        s.serve(Channel.STDERR, 'note');
        s.exit(0);
      }),
    ).run(base({ stdout }));
    expect(code).toBe(0);
    expect(stdout.text()).toBe('note');
  });

  test('unknown channels (a server CLOSE frame) are ignored, not thrown', async () => {
    const code = await new ExecStream(
      new FakeTransport((s) => {
        s.serve(Channel.CLOSE, Buffer.from([Channel.STDOUT]));
        s.serve(9, 'x');
        s.exit(3);
      }),
    ).run(base());
    expect(code).toBe(3);
  });

  test('stdin is sent on channel 0 and half-closed on end (v5)', async () => {
    const stdin = new PassThrough();
    let socket: FakeSocket | undefined;
    const transport = new FakeTransport(async (s) => {
      socket = s;
      stdin.write('hello ');
      stdin.end('world');
      await tick();
      await tick();
      s.exit(0);
    });
    await new ExecStream(transport).run(base({ stdin }));
    expect(Buffer.concat(socket!.frames(Channel.STDIN)).toString()).toBe('hello world');
    expect(socket!.sent.at(-1)).toEqual(Buffer.from([Channel.CLOSE, Channel.STDIN]));
    expect(transport.query().get('stdin')).toBe('true');
  });

  test('stdin end closes the socket on pre-v5 protocols (no half-close there)', async () => {
    const stdin = new PassThrough();
    const transport = new FakeTransport(
      async (s) => {
        stdin.end('x');
        await tick();
        await tick();
        if (s.closed) s.drop(1000);
      },
      undefined,
      'v4.channel.k8s.io',
    );
    const f = await failure(new ExecStream(transport).run(base({ stdin })));
    expect(f.code).toBe(ExitCode.API_UNREACHABLE);
  });

  test('binary stdin arrives byte for byte', async () => {
    const stdin = new PassThrough();
    const bytes = Buffer.from(Array.from({ length: 70000 }, (_, i) => (i * 7919) % 256));
    let socket: FakeSocket | undefined;
    await new ExecStream(
      new FakeTransport(async (s) => {
        socket = s;
        stdin.end(bytes);
        for (let i = 0; i < 5; i++) await tick();
        s.exit(0);
      }),
    ).run(base({ stdin }));
    expect(Buffer.concat(socket!.frames(Channel.STDIN)).equals(bytes)).toBe(true);
  });

  test('TTY: the window size at start and on every resize, until the end', async () => {
    const terminal = new FakeTerminal({ cols: 120, rows: 40 });
    let socket: FakeSocket | undefined;
    await new ExecStream(
      new FakeTransport((s) => {
        socket = s;
        terminal.resize(100, 30);
        s.exit(0);
      }),
    ).run(base({ tty: true, terminal }));
    expect(socket!.frames(Channel.RESIZE).map((f) => JSON.parse(f.toString()))).toEqual([
      { Width: 120, Height: 40 },
      { Width: 100, Height: 30 },
    ]);
    expect(terminal.subscribed).toBe(0);
  });

  test('onOpen runs once the stream is open, before any output', async () => {
    const events: string[] = [];
    const stdout = new Writable({
      write(chunk: Buffer, _e, cb) {
        events.push(`out:${chunk}`);
        cb();
      },
    });
    await new ExecStream(
      new FakeTransport((s) => {
        s.serve(Channel.STDOUT, 'x');
        s.exit(0);
      }),
    ).run(base({ stdout, onOpen: () => events.push('open') }));
    expect(events).toEqual(['open', 'out:x']);
  });

  test('a failed exec status becomes one line (the agent container is gone)', async () => {
    const f = await failure(
      new ExecStream(new FakeTransport((s) => s.status({ status: 'Failure', message: 'container not found ("agent")' }))).run(base()),
    );
    expect(f).toEqual({
      code: ExitCode.AGENT_UNAVAILABLE,
      message: 'exec into the nsdebug agent on node n1 failed: container not found ("agent"); see `kubectl nsdebug status`',
    });
  });

  test('an unreadable status', async () => {
    const f = await failure(new ExecStream(new FakeTransport((s) => void s.serve(Channel.ERROR, '{not json'))).run(base()));
    expect(f.code).toBe(ExitCode.INTERNAL);
  });

  test('the connection closing without a status', async () => {
    const f = await failure(new ExecStream(new FakeTransport((s) => s.drop(1006))).run(base()));
    expect(f.code).toBe(ExitCode.API_UNREACHABLE);
    expect(f.message).toBe(
      "the exec stream to the nsdebug agent on node n1 closed before the command finished (websocket code 1006); the agent ends the session's processes when its stream goes",
    );
  });

  test('a socket error', async () => {
    const f = await failure(new ExecStream(new FakeTransport((s) => s.fail(new Error('read ECONNRESET')))).run(base()));
    expect(f).toEqual({
      code: ExitCode.API_UNREACHABLE,
      message: 'the exec stream to the nsdebug agent on node n1 failed: read ECONNRESET',
    });
  });

  test('a refused handshake', async () => {
    const f = await failure(new ExecStream(new FakeTransport(undefined, new Error('Unexpected server response: 403'))).run(base()));
    expect(f.code).toBe(ExitCode.FORBIDDEN);
  });

  test('a handshake that does not finish in time', async () => {
    const hanging = { connect: () => new Promise<never>(() => undefined) };
    const f = await failure(new ExecStream(hanging).run(base({ connectTimeoutMs: 20 })));
    expect(f).toEqual({
      code: ExitCode.API_UNREACHABLE,
      message:
        'opening the exec stream to the nsdebug agent on node n1 timed out after 0.02s; check the cluster, or raise --request-timeout',
    });
  });

  test('output back-pressure pauses the socket until the writer drains', async () => {
    const slow = new Writable({ highWaterMark: 4, write: (_c, _e, cb) => setTimeout(cb, 5) });
    let paused = false;
    await new ExecStream(
      new FakeTransport(async (s) => {
        s.serve(Channel.STDOUT, 'more than four bytes');
        paused = s.paused;
        await new Promise((r) => slow.once('drain', r));
        await tick();
        s.exit(0);
      }),
    ).run(base({ stdout: slow }));
    expect(paused).toBe(true);
  });
});
