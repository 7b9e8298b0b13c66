// The session port against real TCP connections on localhost, with a fake API server behind the
// agent (FakeApi, DebugSessionApi: no cluster needed) and a fake of the native library
// (fake-native.ts: no root): a refused connection (a first frame that is no hello, a malformed
// hello, a DebugSession that is missing, spent or too old) gets one line and an exit code, is
// audited as refused and closed, and nothing reaches the native library; a client that breaks the
// framing or leaves before its hello is dropped; a client may send no stdin before its window is
// granted; a silent client is dropped; the agent's heartbeats flow while it waits on the API;
// connections are capped.
import { connect, type Server, type Socket } from 'node:net';

import {
  CONTRACT_VERSION,
  ExitCode,
  MAX_FRAME_PAYLOAD,
  SESSION_TTL_SECONDS,
  encodeFrame,
  Frame,
  FrameDecoder,
  sessionSecretHash,
  type DebugSessionObject,
} from '../../../src/contract.js';
import type { ApiResponse, ApiWatch, InClusterApi } from '../../../src/agent/apiserver.js';
import { REQUESTER_POLICY } from '../../../src/agent/debug-session.js';
import { MAX_CONNECTIONS, startSessionPort } from '../../../src/agent/session-port.js';
import { FakeNativeLibrary } from './fake-native.js';

/** An API server that answers every request with `answer`, after `delayMs`. */
class FakeApi implements InClusterApi {
  requests: string[] = [];
  constructor(
    private readonly answer: ApiResponse,
    private readonly delayMs = 0,
  ) {}
  async request(method: string, path: string): Promise<ApiResponse> {
    this.requests.push(`${method} ${path}`);
    await new Promise((r) => setTimeout(r, this.delayMs));
    return this.answer;
  }
  watch(path: string): ApiWatch {
    this.requests.push(`WATCH ${path}`);
    return { done: new Promise(() => undefined), stop: () => undefined };
  }
}

const HELLO = { contract: CONTRACT_VERSION, namespace: 'team-a', name: 'nsdebug-x7k2p', secret: 'ab'.repeat(32) };
const helloFrame = (hello: unknown = HELLO) => encodeFrame(Frame.HELLO, Buffer.from(JSON.stringify(hello)));

const NOW = Date.parse('2026-03-01T12:00:00Z');
/** The DebugSession HELLO names, fresh and unclaimed, as the API server returns it. */
const debugSession = (more: { createdMsAgo?: number; phase?: 'Claimed' } = {}): DebugSessionObject => ({
  apiVersion: 'nsdebug.io/v1alpha1',
  kind: 'DebugSession',
  metadata: {
    namespace: HELLO.namespace,
    name: HELLO.name,
    uid: 'u-1',
    resourceVersion: '7',
    creationTimestamp: new Date(NOW - (more.createdMsAgo ?? 1000)).toISOString(),
  },
  spec: { pod: 'web-0', requester: 'alice', secretHash: sessionSecretHash(HELLO.secret), command: [] },
  ...(more.phase ? { status: { phase: more.phase } } : {}),
});

/**
 * An API server where the admission policy that pins requesters is in force, with HELLO's
 * DebugSession (or none), whose claim (the status update) gets claimStatus.
 */
class DebugSessionApi implements InClusterApi {
  requests: string[] = [];
  constructor(
    private readonly session: DebugSessionObject | undefined,
    private readonly claimStatus = 200,
  ) {}
  request(method: string, path: string): Promise<ApiResponse> {
    this.requests.push(`${method} ${path}`);
    if (path.endsWith(`/validatingadmissionpolicies/${REQUESTER_POLICY}`))
      return answer(200, { spec: { validations: [{ expression: 'object.spec.requester == request.userInfo.username' }] } });
    if (path.endsWith(`/validatingadmissionpolicybindings/${REQUESTER_POLICY}`))
      return answer(200, { spec: { policyName: REQUESTER_POLICY, validationActions: ['Deny'] } });
    if (method === 'PUT') return answer(this.claimStatus, {});
    if (method === 'GET' && path.endsWith(`/${HELLO.name}`)) return this.session ? answer(200, this.session) : answer(404, {});
    return answer(500, { message: `not faked: ${method} ${path}` });
  }
  watch(path: string): ApiWatch {
    this.requests.push(`WATCH ${path}`);
    return { done: new Promise(() => undefined), stop: () => undefined };
  }
}
const answer = (status: number, body: unknown): Promise<ApiResponse> => Promise.resolve({ status, body, serverTime: NOW });

let server: Server | undefined;
let native: FakeNativeLibrary;
const audit: Array<Record<string, unknown>> = [];
async function start(api: InClusterApi): Promise<number> {
  const limits = { onStop: () => () => undefined, maxSessionMs: 60_000 };
  native = new FakeNativeLibrary();
  server = await startSessionPort(native, (r) => audit.push(r), limits, {
    api,
    node: 'node-1',
    port: 0,
    link: { heartbeatMs: 100, timeoutMs: 600 },
  });
  return (server.address() as { port: number }).port;
}
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
  audit.length = 0;
  // a refused connection reaches the native library only to give memory back once it is over
  expect(native.calls.filter((call) => call !== 'releaseMemory')).toEqual([]);
});

/** Connect, send, and collect the frames and how the connection ended. */
function talk(port: number, send: (s: Socket) => void) {
  return new Promise<{ frames: Array<{ type: number; text: string }>; closed: 'end' | 'reset' }>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const decoder = new FrameDecoder();
    const frames: Array<{ type: number; text: string }> = [];
    socket.on('data', (d: Buffer) => frames.push(...decoder.push(d).map((f) => ({ type: f.type, text: f.payload.toString('utf8') }))));
    socket.on('error', () => resolve({ frames, closed: 'reset' }));
    socket.on('close', () => resolve({ frames, closed: 'end' }));
    socket.on('connect', () => send(socket));
  });
}

/** A refused connection's frames: one stderr line, then the exit code, and nothing else but heartbeats. */
function refusal(frames: Array<{ type: number; text: string }>): { line: string | undefined; exitCode: number | undefined } {
  const sent = frames.filter((f) => f.type !== Frame.HEARTBEAT);
  expect(sent.map((f) => f.type)).toEqual([Frame.STDERR, Frame.EXIT]);
  return { line: sent[0]?.text, exitCode: sent[1] && Buffer.from(sent[1].text, 'utf8').readInt32BE(0) };
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition() && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 10));
}

describe('the session port', () => {
  test('an API without the admission policy that pins requesters (404 everywhere): one line, exit 66, the connection closed by the agent', async () => {
    const api = new FakeApi({ status: 404, body: {} });
    const port = await start(api);
    const { frames } = await talk(port, (s) => s.write(helloFrame()));
    expect(frames.map((f) => f.type)).toEqual([Frame.STDERR, Frame.EXIT]);
    expect(frames[0]?.text).toMatch(/^nsdebug-agent: the admission policy nsdebug-debugsession-requester .* is not in force/);
    expect(Buffer.from(frames[1]!.text, 'utf8').readInt32BE(0)).toBe(66);
    expect(audit).toEqual([expect.objectContaining({ event: 'refused' })]);
  });

  test('a first frame that is not a hello ends the connection before any API request', async () => {
    const api = new FakeApi({ status: 404, body: {} });
    const port = await start(api);
    const { frames } = await talk(port, (s) => s.write(encodeFrame(Frame.STDIN, Buffer.from('ls\n'))));
    expect(refusal(frames)).toEqual({ line: 'nsdebug-agent: the first frame was not a session request\n', exitCode: ExitCode.USAGE });
    expect(api.requests).toEqual([]);
    expect(audit).toEqual([{ event: 'refused', error: 'the first frame was not a session request' }]);
  });

  test.each([
    ['not JSON', Buffer.from('{"contract":'), ExitCode.FORBIDDEN, 'the session request is not JSON'],
    [
      'another contract version',
      { ...HELLO, contract: CONTRACT_VERSION - 1 },
      ExitCode.CONTRACT_MISMATCH,
      `this agent speaks contract ${CONTRACT_VERSION}, the client ${CONTRACT_VERSION - 1}`,
    ],
    ['no contract version', { ...HELLO, contract: undefined }, ExitCode.CONTRACT_MISMATCH, 'the client an older one'],
    ['a secret of 63 hex digits', { ...HELLO, secret: 'a'.repeat(63) }, ExitCode.FORBIDDEN, 'the session request carries no valid secret'],
    ['a secret that is not hex', { ...HELLO, secret: 'g'.repeat(64) }, ExitCode.FORBIDDEN, 'the session request carries no valid secret'],
    [
      'a namespace that is no DNS label',
      { ...HELLO, namespace: 'Team_A' },
      ExitCode.FORBIDDEN,
      'the session request names no valid namespace',
    ],
  ])('a hello with %s is refused before any API request', async (_what, hello, exitCode, message) => {
    const api = new DebugSessionApi(debugSession());
    const port = await start(api);
    const payload = Buffer.isBuffer(hello) ? encodeFrame(Frame.HELLO, hello) : helloFrame(hello);
    const { frames } = await talk(port, (s) => s.write(payload));
    expect(refusal(frames)).toEqual({ line: expect.stringContaining(message), exitCode });
    expect(api.requests).toEqual([]);
    expect(audit).toEqual([{ event: 'refused', error: expect.stringContaining(message) }]);
  });

  test.each([
    ['does not exist', undefined, 200, `there is no DebugSession team-a/nsdebug-x7k2p`],
    [
      'was claimed already (its status)',
      debugSession({ phase: 'Claimed' }),
      200,
      'was used already (Claimed); each session needs a new one',
    ],
    ['loses the claim to another connection (409)', debugSession(), 409, 'was used already; each session needs a new one'],
    [
      'is too old',
      debugSession({ createdMsAgo: (SESSION_TTL_SECONDS + 1) * 1000 }),
      200,
      `expired (${SESSION_TTL_SECONDS} s after its creation)`,
    ],
  ])('a hello naming a DebugSession that %s: one line, exit 66, audited as refused', async (_what, session, claimStatus, message) => {
    const api = new DebugSessionApi(session, claimStatus);
    const port = await start(api);
    const { frames } = await talk(port, (s) => s.write(helloFrame()));
    const { line, exitCode } = refusal(frames);
    expect(exitCode).toBe(ExitCode.FORBIDDEN);
    expect(line).toMatch(/^nsdebug-agent: .*\n$/);
    expect(line).toContain(message);
    expect(audit).toEqual([{ event: 'refused', error: expect.stringContaining(message) }]);
    // nothing was served: no pod was read, no revocation watched
    expect(api.requests.filter((r) => r.includes('/pods/') || r.startsWith('WATCH'))).toEqual([]);
  });

  test('a frame larger than the protocol allows drops the connection before any API request', async () => {
    const api = new DebugSessionApi(debugSession());
    const port = await start(api);
    const header = Buffer.alloc(5);
    header[0] = Frame.HELLO;
    header.writeUInt32BE(MAX_FRAME_PAYLOAD + 1, 1);
    const { frames } = await talk(port, (s) => s.write(header));
    // the link is broken: no line can be framed for the client, the audit says why
    expect(frames.filter((f) => f.type !== Frame.HEARTBEAT)).toEqual([]);
    expect(api.requests).toEqual([]);
    expect(audit).toEqual([
      { event: 'refused', error: expect.stringMatching(/^the client sent a malformed stream \(a frame of 1048577 bytes/) },
    ]);
  });

  test('a client that leaves before its hello is dropped and audited, nothing asked of the API', async () => {
    const api = new DebugSessionApi(debugSession());
    const port = await start(api);
    await talk(port, (s) => s.end());
    await waitFor(() => audit.length > 0);
    expect(api.requests).toEqual([]);
    expect(audit).toEqual([{ event: 'refused', error: 'the client disconnected' }]);
  });

  test('stdin sent before the agent granted a window ends the connection: the agent never stops reading a client', async () => {
    const api = new FakeApi({ status: 404, body: {} }, 1500);
    const port = await start(api);
    const began = Date.now();
    const { frames } = await talk(port, (s) => {
      s.write(helloFrame());
      const chunk = encodeFrame(Frame.STDIN, Buffer.alloc(64 * 1024));
      for (let i = 0; i < 64; i++) s.write(chunk);
    });
    expect(frames.filter((f) => f.type === Frame.STDOUT)).toEqual([]);
    // dropped at once, not after the API's answer
    expect(Date.now() - began).toBeLessThan(1500);
    await new Promise((r) => setTimeout(r, 1600)); // the API's late answer, audited, before the next test
  });

  test("while the API is slow the agent's heartbeats reach the client", async () => {
    const api = new FakeApi({ status: 404, body: {} }, 1000);
    const port = await start(api);
    const { frames } = await talk(port, (s) => {
      s.write(helloFrame());
      const beat = setInterval(() => s.write(encodeFrame(Frame.HEARTBEAT)), 100);
      s.on('close', () => clearInterval(beat));
    });
    expect(frames.filter((f) => f.type === Frame.HEARTBEAT).length).toBeGreaterThanOrEqual(5);
    expect(frames.slice(-2).map((f) => f.type)).toEqual([Frame.STDERR, Frame.EXIT]);
  });

  test('a client that goes silent is dropped after the heartbeat timeout, not left waiting', async () => {
    const port = await start(new FakeApi({ status: 404, body: {} }));
    const began = Date.now();
    await talk(port, () => undefined);
    expect(Date.now() - began).toBeLessThan(2000);
    expect(audit).toEqual([expect.objectContaining({ event: 'refused', error: expect.stringMatching(/no heartbeat from the client/) })]);
  });

  test(`serves at most ${MAX_CONNECTIONS} connections at once`, async () => {
    await start(new FakeApi({ status: 404, body: {} }));
    expect(server?.maxConnections).toBe(MAX_CONNECTIONS);
  });
});
