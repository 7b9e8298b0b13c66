// The session stream over a port-forward (the v4 channel protocol: channel 0 data, channel 1
// errors, each channel's first message prefixed with the port), carrying session frames. The
// transport is a fake here; test/e2e/session-auth.test.ts runs it through a real API server.
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';

import { CONTRACT_VERSION, encodeFrame, Frame, FrameDecoder, SESSION_PORT } from '../../../src/contract.js';
import { Channel } from '../../../src/kube/exec.js';
import { BULK_OUTPUT_WINDOW, FramedExecStream, SessionStream } from '../../../src/kube/session-stream.js';
import { runDebug } from '../../../src/cli/debug.js';
import { FakeOutput, fakeCluster, fakeIo, FakeSessionClient, FakeTerminal } from '../cli/fakes.js';
import {
  FakeAccessClient,
  FakeAgentClient,
  FakeTargetClient,
  FakeTransport,
  ID,
  failure,
  fakeAgentPod,
  fakePod,
  running,
  type FakeSocket,
} from './fakes.js';

const PORT_PREFIX = Buffer.from([SESSION_PORT & 0xff, SESSION_PORT >> 8]);
const HELLO = { contract: CONTRACT_VERSION, namespace: 'demo', name: 'nsdebug-1', secret: 'ab'.repeat(32) };

/** What the client sent, as frames (every message is channel 0, the TCP stream). */
function sentFrames(socket: FakeSocket) {
  const decoder = new FrameDecoder();
  return socket.sent.flatMap((m) => {
    expect(m[0]).toBe(0);
    return decoder.push(m.subarray(1));
  });
}

/** The agent's side: the port prefix on both channels, then frames on channel 0. */
function agentSends(socket: FakeSocket, ...frames: Buffer[]) {
  socket.serve(0, PORT_PREFIX);
  socket.serve(1, PORT_PREFIX);
  for (const f of frames) socket.serve(0, f);
}

const windowFrame = (bytes: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(bytes, 0);
  return encodeFrame(Frame.WINDOW, b);
};

const exitFrame = (code: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(code, 0);
  return encodeFrame(Frame.EXIT, b);
};

describe('frames', () => {
  test('one frame from parts, behind a channel byte, decodes as the frame of the whole payload', () => {
    const framed = encodeFrame(Frame.STDIN, [Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cde')], 7);
    expect(framed[0]).toBe(7);
    expect(framed.subarray(1)).toEqual(encodeFrame(Frame.STDIN, Buffer.from('abcde')));
    expect(new FrameDecoder().push(framed.subarray(1))).toEqual([{ type: Frame.STDIN, payload: Buffer.from('abcde') }]);
    expect(encodeFrame(Frame.STDIN_EOF)).toEqual(Buffer.from([Frame.STDIN_EOF, 0, 0, 0, 0]));
  });
});

describe('SessionStream', () => {
  test('hello first, output split by frame type, the exit code from the EXIT frame', async () => {
    const transport = new FakeTransport((s) =>
      agentSends(
        s,
        Buffer.concat([encodeFrame(Frame.STDOUT, Buffer.from('out\n')), encodeFrame(Frame.STDERR, Buffer.from('err\n'))]),
        exitFrame(9),
      ),
    );
    const stdout = new FakeOutput();
    const stderr = new FakeOutput();
    const code = await new SessionStream(transport).run({
      namespace: 'nsdebug-system',
      pod: 'agent-1',
      port: SESSION_PORT,
      hello: HELLO,
      stdout,
      stderr,
      tty: false,
    });
    expect([code, stdout.text(), stderr.text()]).toEqual([9, 'out\n', 'err\n']);
    expect(transport.paths).toEqual([`/api/v1/namespaces/nsdebug-system/pods/agent-1/portforward?ports=${SESSION_PORT}`]);
    const [hello] = sentFrames(transport.socket as FakeSocket);
    expect([hello?.type, JSON.parse(String(hello?.payload))]).toEqual([Frame.HELLO, HELLO]);
  });

  test('stdin only within the window the agent grants, then STDIN_EOF; with a TTY the window size first', async () => {
    const stdin = new PassThrough();
    const transport = new FakeTransport(async (s) => {
      agentSends(s);
      stdin.end('typed');
      await new Promise((r) => setTimeout(r, 20));
      // nothing granted yet: nothing sent
      expect(sentFrames(s).map((f) => f.type)).toEqual([Frame.HELLO, Frame.WINDOW, Frame.RESIZE]);
      s.serve(0, windowFrame(3));
      await new Promise((r) => setTimeout(r, 20));
      s.serve(0, windowFrame(10));
      await new Promise((r) => setTimeout(r, 20));
      s.serve(0, exitFrame(0));
    });
    await new SessionStream(transport).run({
      namespace: 'nsdebug-system',
      pod: 'agent-1',
      port: SESSION_PORT,
      hello: HELLO,
      stdin,
      stdout: new FakeOutput(),
      tty: true,
      terminal: new FakeTerminal(),
    });
    const frames = sentFrames(transport.socket as FakeSocket).map((f) => [f.type, String(f.payload)]);
    expect(frames).toEqual([
      [Frame.HELLO, JSON.stringify(HELLO)],
      // what the agent may send before anything was written here
      [Frame.WINDOW, '\0\x10\0\0'],
      [Frame.RESIZE, '{"cols":80,"rows":24}'],
      [Frame.STDIN, 'typ'],
      [Frame.STDIN, 'ed'],
      [Frame.STDIN_EOF, ''],
    ]);
  });

  test('without -i the agent is told at once that there is no stdin', async () => {
    const transport = new FakeTransport((s) => agentSends(s, exitFrame(0)));
    await new SessionStream(transport).run({
      namespace: 'n',
      pod: 'p',
      port: SESSION_PORT,
      hello: HELLO,
      stdout: new FakeOutput(),
      tty: false,
    });
    expect(sentFrames(transport.socket as FakeSocket).map((f) => f.type)).toEqual([Frame.HELLO, Frame.WINDOW, Frame.STDIN_EOF]);
  });

  test('the agent ended the session (ENDED, then EXIT): exit 74 and its reason', async () => {
    const ended = encodeFrame(Frame.ENDED, Buffer.from(JSON.stringify({ reason: 'revoked', message: 'DebugSession demo/x was deleted' })));
    const transport = new FakeTransport((s) => agentSends(s, ended, exitFrame(137)));
    const f = await failure(
      new SessionStream(transport).run({
        namespace: 'n',
        pod: 'p',
        port: SESSION_PORT,
        hello: HELLO,
        stdout: new FakeOutput(),
        tty: false,
        describe: 'the agent',
      }),
    );
    expect(f).toEqual({ code: 74, message: 'the agent ended the session: DebugSession demo/x was deleted' });
  });

  test('heartbeats go out while the session runs; an agent silent past the timeout: exit 75, the stream closed', async () => {
    const transport = new FakeTransport((s) => agentSends(s));
    const started = Date.now();
    const f = await failure(
      new SessionStream(transport, { heartbeatMs: 20, timeoutMs: 200 }).run({
        namespace: 'n',
        pod: 'p',
        port: SESSION_PORT,
        hello: HELLO,
        stdout: new FakeOutput(),
        tty: false,
        describe: 'the agent',
      }),
    );
    expect(f.code).toBe(75);
    expect(f.message).toMatch(/^lost the connection to the agent: nothing heard for 0 s; the agent ends the session's processes/);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(sentFrames(transport.socket as FakeSocket).filter((fr) => fr.type === Frame.HEARTBEAT).length).toBeGreaterThanOrEqual(3);
    expect(transport.socket?.closed).toBe(true);
  });

  test('output credit goes back only as local output is written; the stream is never paused, so a full local side is not silence', async () => {
    const stdout = new PassThrough({ highWaterMark: 4 });
    const granted = (s: FakeSocket) =>
      sentFrames(s)
        .filter((f) => f.type === Frame.WINDOW)
        .map((f) => f.payload.readUInt32BE(0));
    const transport = new FakeTransport(async (s) => {
      agentSends(s, encodeFrame(Frame.STDOUT, Buffer.alloc(64)));
      // 3 timeouts long, nothing read locally: the agent's heartbeats still count
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 100));
        s.serve(0, encodeFrame(Frame.HEARTBEAT));
      }
      expect([s.paused, granted(s)]).toEqual([false, [BULK_OUTPUT_WINDOW]]);
      stdout.resume();
      await new Promise((r) => setTimeout(r, 20));
      expect(granted(s)).toEqual([BULK_OUTPUT_WINDOW, 64]);
      s.serve(0, exitFrame(0));
    });
    const code = await new SessionStream(transport, { heartbeatMs: 20, timeoutMs: 200 }).run({
      namespace: 'n',
      pod: 'p',
      port: SESSION_PORT,
      hello: HELLO,
      stdout,
      tty: false,
    });
    expect(code).toBe(0);
  });

  test.each([
    [
      'the port-forward is refused (403)',
      new FakeTransport(undefined, new Error('Unexpected server response: 403')),
      66,
      /^you may not reach the agent: missing permission create pods\/portforward in namespace nsdebug-system; ask your cluster admin to bind the nsdebug-session-user role there$/,
    ],
    [
      'nothing listens on the session port',
      new FakeTransport((s) => {
        s.serve(1, PORT_PREFIX);
        s.serve(1, Buffer.from('error forwarding port 7070 to pod abc: dial tcp4 127.0.0.1:7070: connect: connection refused'));
      }),
      67,
      /^the agent has no session port \(.*connection refused\); it needs an agent of this release: kubectl nsdebug install --session-auth$/,
    ],
    [
      'the stream ends before the EXIT frame',
      new FakeTransport((s) => s.close()),
      75,
      /^the connection to the agent closed before the command finished \(the port-forward ended\); the agent ends the session's processes when its client goes$/,
    ],
  ])('%s', async (_what, transport, code, message) => {
    const run = new SessionStream(transport).run({
      namespace: 'nsdebug-system',
      pod: 'agent-1',
      port: SESSION_PORT,
      hello: HELLO,
      stdout: new FakeOutput(),
      tty: false,
      describe: 'the agent',
    });
    const f = await failure(run);
    expect(f.code).toBe(code);
    expect(f.message).toMatch(message);
  });
});

describe('kubectl nsdebug TARGET --session-auth', () => {
  const cluster = (transport: FakeTransport, sessions = new FakeSessionClient()) =>
    fakeCluster({
      targets: new FakeTargetClient([fakePod('busybox', { statuses: [running('app', ID('a'))] })]),
      access: new FakeAccessClient({ allowed: true }),
      agents: new FakeAgentClient({ 'node-1': [fakeAgentPod('node-1')] }),
      transport,
      sessions,
    });

  test('asks by a DebugSession in the pod’s namespace, presents its secret on the port-forward, deletes it afterwards', async () => {
    const c = cluster(new FakeTransport((s) => agentSends(s, encodeFrame(Frame.STDOUT, Buffer.from('hi\n')), exitFrame(3))));
    const io = fakeIo();
    const code = await runDebug({ target: 'busybox', 'session-auth': true, 'read-only': true, command: ['ps'] }, io, c);
    expect([code, io.stdout.text()]).toEqual([3, 'hi\n']);
    // the right that is checked is the one the API server enforces for this mode
    expect(c.access.questions).toEqual([{ namespace: 'demo', verb: 'create', group: 'nsdebug.io', resource: 'debugsessions' }]);
    const [hello] = sentFrames(c.transport.socket as FakeSocket);
    const presented = JSON.parse(String(hello?.payload)) as typeof HELLO;
    expect(c.sessions.created).toEqual([
      {
        namespace: 'demo',
        spec: {
          requester: 'alice',
          pod: 'busybox',
          container: 'app',
          tools: false,
          tty: false,
          readOnly: true,
          command: ['ps'],
          secretHash: createHash('sha256').update(presented.secret).digest('hex'),
        },
      },
    ]);
    expect([presented.namespace, presented.name]).toEqual(['demo', 'nsdebug-1']);
    expect(c.sessions.removed).toEqual(['demo/nsdebug-1']);
    expect(c.transport.paths[0]).toBe(`/api/v1/namespaces/nsdebug-system/pods/nsdebug-agent-node-1/portforward?ports=${SESSION_PORT}`);
  });

  test('the DebugSession is deleted when the session fails too', async () => {
    const c = cluster(new FakeTransport((s) => s.close()));
    const f = await failure(runDebug({ target: 'busybox', 'session-auth': true, command: ['true'] }, fakeIo(), c));
    expect(f.code).toBe(75);
    expect(c.sessions.removed).toEqual(['demo/nsdebug-1']);
  });

  test('NSDEBUG_SESSION_AUTH=1 turns it on; node/NAME is refused with it', async () => {
    const { completeDebug, validateDebug } = await import('../../../src/cli/options.js');
    const facts = { stdinIsTTY: false, stderrIsTTY: false };
    expect(completeDebug({ target: 'busybox', command: [] }, facts, { NSDEBUG_SESSION_AUTH: '1' }).sessionAuth).toBe(true);
    expect(completeDebug({ target: 'busybox', command: [] }, facts, {}).sessionAuth).toBe(false);
    expect(() => validateDebug(completeDebug({ target: 'node/n1', 'session-auth': true, command: [] }, facts))).toThrow(
      /node\/NAME is not available with --session-auth/,
    );
  });

  test('--wait: the DebugSession carries how long to wait', async () => {
    const c = cluster(new FakeTransport((s) => agentSends(s, exitFrame(0))));
    await runDebug({ target: 'busybox', 'session-auth': true, wait: true, timeout: '90s', command: ['true'] }, fakeIo(), c);
    expect(c.sessions.created[0]?.spec).toMatchObject({ waitSeconds: 90, command: ['true'] });
  });
});

describe('FramedExecStream (plain mode: frames over the exec stdin and stdout)', () => {
  const run = (transport: FakeTransport, stdout = new FakeOutput(), stderr = new FakeOutput()) =>
    new FramedExecStream(transport).run({
      namespace: 'nsdebug-system',
      pod: 'agent-1',
      container: 'agent',
      command: ['nsdebug-agent', 'enter', '--framed', '--', 'true'],
      stdout,
      stderr,
      tty: true,
      describe: 'the agent',
    });

  test("no exec TTY and stdin always attached; frames on stdout, the agent's own lines on stderr; the code from EXIT", async () => {
    const stdout = new FakeOutput();
    const stderr = new FakeOutput();
    const transport = new FakeTransport((s) => {
      s.serve(Channel.STDERR, 'nsdebug-agent: a note\n');
      s.frame(Frame.STDOUT, 'out');
      s.exit(3);
    });
    expect(await run(transport, stdout, stderr)).toBe(3);
    expect([stdout.text(), stderr.text()]).toEqual(['out', 'nsdebug-agent: a note\n']);
    expect([transport.query().get('stdin'), transport.query().get('tty')]).toEqual(['true', 'false']);
  });

  test('an exec that ends well without an EXIT frame was cut short: 75, not 0', async () => {
    const f = await failure(run(new FakeTransport((s) => s.status({ status: 'Success' }))));
    expect(f.code).toBe(75);
    expect(f.message).toMatch(
      /^the connection to the agent closed before the command finished \(the exec ended without the session's exit code\)/,
    );
  });

  test('an agent that refuses before framing (another contract): its exit code and line come through', async () => {
    const stderr = new FakeOutput();
    const code = await run(
      new FakeTransport((s) => {
        s.serve(Channel.STDERR, 'nsdebug-agent: this agent speaks contract version 2\n');
        s.status({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '68' }] } });
      }),
      new FakeOutput(),
      stderr,
    );
    expect([code, stderr.text()]).toEqual([68, 'nsdebug-agent: this agent speaks contract version 2\n']);
  });
});
