// The session port against real TCP connections on localhost, with a fake API server behind the
// agent (FakeApi: no cluster needed): a refused connection gets one line and an exit code and is
// closed; what is read of a client before its session runs is bounded; connections are capped.
import { connect, type Server, type Socket } from 'node:net';

import { encodeFrame, Frame, FrameDecoder } from '../../../src/contract.js';
import type { ApiResponse, InClusterApi } from '../../../src/agent/apiserver.js';
import { MAX_CONNECTIONS, MAX_EARLY_BYTES, startSessionPort } from '../../../src/agent/session-port.js';
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
}

const HELLO = { namespace: 'team-a', name: 'nsdebug-x7k2p', secret: 'ab'.repeat(32) };
const helloFrame = () => encodeFrame(Frame.HELLO, Buffer.from(JSON.stringify(HELLO)));
// the session port never reaches the native library for a refused connection
const NO_NATIVE = {} as NativeLibrary;

let server: Server | undefined;
const audit: Array<Record<string, unknown>> = [];
async function start(api: InClusterApi): Promise<number> {
  server = await startSessionPort(NO_NATIVE, (r) => audit.push(r), new Promise(() => undefined), { api, node: 'node-1', port: 0 });
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

  test('no more than MAX_EARLY_BYTES is read before the session runs: then reading waits (the client is still answered)', async () => {
    const api = new FakeApi({ status: 404, body: {} }, 1500);
    const port = await start(api);
    let agentSide: Socket | undefined;
    server!.on('connection', (s: Socket) => (agentSide = s));
    const answer = talk(port, (s) => {
      s.write(helloFrame());
      const chunk = encodeFrame(Frame.STDIN, Buffer.alloc(64 * 1024));
      for (let sent = 0; sent <= 4 * MAX_EARLY_BYTES; sent += chunk.length) s.write(chunk);
    });
    await new Promise((r) => setTimeout(r, 700));
    // while the API has not answered: at most the bound, plus the one read that crossed it
    expect(agentSide?.bytesRead).toBeLessThanOrEqual(MAX_EARLY_BYTES + 128 * 1024);
    const { frames } = await answer;
    expect(frames.map((f) => f.type)).toEqual([Frame.STDERR, Frame.EXIT]);
  });

  test(`serves at most ${MAX_CONNECTIONS} connections at once`, async () => {
    await start(new FakeApi({ status: 404, body: {} }));
    expect(server?.maxConnections).toBe(MAX_CONNECTIONS);
  });
});
