// The session port against real TCP connections on localhost, with a fake API server behind the
// agent (FakeApi: no cluster needed): a refused connection gets one line and an exit code and is
// closed; a client may send no stdin before its window is granted; a silent client is dropped;
// the agent's heartbeats flow while it waits on the API; connections are capped.
import { connect, type Server, type Socket } from 'node:net';

import { CONTRACT_VERSION, encodeFrame, Frame, FrameDecoder } from '../../../src/contract.js';
import type { ApiResponse, ApiWatch, InClusterApi } from '../../../src/agent/apiserver.js';
import { MAX_CONNECTIONS, startSessionPort } from '../../../src/agent/session-port.js';
import type { NativeLibrary } from '../../../src/native/libnsdebug.js';

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
const helloFrame = () => encodeFrame(Frame.HELLO, Buffer.from(JSON.stringify(HELLO)));
// the session port never reaches the native library for a refused connection
const NO_NATIVE = {} as NativeLibrary;

let server: Server | undefined;
const audit: Array<Record<string, unknown>> = [];
async function start(api: InClusterApi): Promise<number> {
  const limits = { onStop: () => () => undefined, maxSessionMs: 60_000 };
  server = await startSessionPort(NO_NATIVE, (r) => audit.push(r), limits, {
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

describe('the session port', () => {
  test('a DebugSession that does not exist: one line, exit 66, the connection closed by the agent', async () => {
    const api = new FakeApi({ status: 404, body: {} });
    const port = await start(api);
    const { frames } = await talk(port, (s) => s.write(helloFrame()));
    expect(frames.map((f) => f.type)).toEqual([Frame.STDERR, Frame.EXIT]);
    expect(frames[0]?.text).toMatch(/^nsdebug-agent: /);
    expect(Buffer.from(frames[1]!.text, 'utf8').readInt32BE(0)).toBe(66);
    expect(audit).toEqual([expect.objectContaining({ event: 'refused' })]);
  });

  test('a first frame that is not a hello ends the connection before any API request', async () => {
    const api = new FakeApi({ status: 404, body: {} });
    const port = await start(api);
    const { frames } = await talk(port, (s) => s.write(encodeFrame(Frame.STDIN, Buffer.from('ls\n'))));
    expect(frames.filter((f) => f.type === Frame.STDOUT)).toEqual([]);
    expect(api.requests).toEqual([]);
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
