// The session stream over a port-forward (the v4 channel protocol: channel 0 data, channel 1
// errors, each channel's first message prefixed with the port), carrying session frames. The
// transport is a fake here; test/e2e/session-auth.test.ts runs it through a real API server.
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';

import { encodeFrame, Frame, FrameDecoder, SESSION_PORT } from '../../../src/contract.js';
import { SessionStream } from '../../../src/kube/session-stream.js';
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
const HELLO = { namespace: 'demo', name: 'nsdebug-1', secret: 'ab'.repeat(32) };

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

const exitFrame = (code: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(code, 0);
  return encodeFrame(Frame.EXIT, b);
};

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

  test('stdin as STDIN frames then STDIN_EOF; with a TTY the window size first', async () => {
    const stdin = new PassThrough();
    const transport = new FakeTransport(async (s) => {
      agentSends(s);
      stdin.end('typed');
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
      [Frame.RESIZE, '{"cols":80,"rows":24}'],
      [Frame.STDIN, 'typed'],
      [Frame.STDIN_EOF, ''],
    ]);
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
      71,
      /^the session stream to the agent closed before the command finished/,
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
    expect(f.code).toBe(71);
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
