// The real executable (bin/kubectl-nsdebug → the start-up snapshot of dist/cli/nsdebug.cjs) against a fake API server on localhost:
// oclif's default-command routing, the kubeconfig, the REST calls, and the exec stream over a real
// WebSocket (client-node's transport) with stdin, stdout, stderr and the exit status. No cluster
// needed; the real cluster is test/e2e/nsdebug.test.ts.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

import { execa } from 'execa';

import { CONTRACT_VERSION, encodeFrame, Frame, FrameDecoder, STREAM_WINDOW } from '../../../src/contract.js';
import { ID, UID, fakeAgentPod, fakePod } from '../kube/fakes.js';

const ROOT = new URL('../../..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'kubectl-nsdebug');
const built = existsSync(join(ROOT, 'dist', 'cli', 'nsdebug.cjs'));
if (!built) console.warn('skipping the executable tests: dist/ is not built (npm run build)');
const maybe = built ? describe : describe.skip;

/** The part of the `ws` package's server used here (ws ships no types; it comes with client-node). */
interface WsSocket {
  protocol: string;
  send(data: Buffer): void;
  close(): void;
  on(event: 'message', listener: (data: Buffer) => void): void;
}
interface WsServer {
  handleUpgrade(req: IncomingMessage, socket: unknown, head: Buffer, cb: (ws: WsSocket) => void): void;
}

interface Exec {
  path: string;
  command: string[];
}

/** Answers like an API server for one pod in `demo`, its node and its agent; every exec runs `cat`, then exits with the last argv word when it is a number. */
async function fakeApiServer(opts: { allowed: boolean }) {
  const wsModule = 'ws';
  const { WebSocketServer } = (await import(wsModule)) as {
    WebSocketServer: new (o: { noServer: boolean; handleProtocols: (p: Set<string>) => string }) => WsServer;
  };
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : ([...protocols][0] ?? '')),
  });
  const execs: Exec[] = [];
  const requests: string[] = [];
  const json = (res: ServerResponse, body: unknown, code = 200) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/api/v1/namespaces/demo/pods/busybox')
      return json(res, fakePod('busybox', { containers: ['busybox'] }));
    if (req.method === 'GET' && url.pathname.startsWith('/api/v1/namespaces/demo/pods/'))
      return json(res, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: 'pods "x" not found' }, 404);
    if (req.method === 'GET' && url.pathname === '/api/v1/nodes/node-1')
      return json(res, { metadata: { name: 'node-1' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } });
    if (req.method === 'GET' && url.pathname === '/api/v1/namespaces/nsdebug-system/pods')
      return json(res, { items: [fakeAgentPod('node-1')] });
    if (req.method === 'POST' && url.pathname === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews') {
      return json(res, { status: { allowed: opts.allowed, ...(opts.allowed ? {} : { reason: 'no RBAC policy matched' }) } }, 201);
    }
    json(res, { kind: 'Status', code: 404, message: 'unexpected request' }, 404);
  });
  server.on('upgrade', (req: IncomingMessage, socket: unknown, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    execs.push({ path: url.pathname, command: url.searchParams.getAll('command') });
    wss.handleUpgrade(req, socket, head, (ws) => {
      const command = url.searchParams.getAll('command');
      const code = Number(command.at(-1));
      // `enter --framed`: the agent's session frames ride the exec's stdin (channel 0) and stdout (1)
      const frame = (type: number, payload = Buffer.alloc(0)) => ws.send(Buffer.concat([Buffer.from([1]), encodeFrame(type, payload)]));
      const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
      const finish = () => {
        frame(Frame.STDERR, Buffer.from('nsdebug-agent: done\n'));
        frame(Frame.EXIT, u32(Number.isInteger(code) ? code : 0));
        const status =
          Number.isInteger(code) && code > 0
            ? { status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: String(code) }] } }
            : { status: 'Success' };
        ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify(status))]));
        ws.close();
      };
      const decoder = new FrameDecoder();
      frame(Frame.WINDOW, u32(STREAM_WINDOW));
      ws.on('message', (data: Buffer) => {
        if (data[0] !== 0) return;
        for (const { type, payload } of decoder.push(data.subarray(1))) {
          if (type === Frame.STDIN) {
            frame(Frame.STDOUT, Buffer.from(payload)); // cat
            frame(Frame.WINDOW, u32(payload.length));
          } else if (type === Frame.STDIN_EOF) finish();
        }
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { server, execs, requests, url: `http://127.0.0.1:${port}` };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nsdebug-bin-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfigFor(url: string): string {
  const path = join(dir, `kubeconfig-${randomBytes(4).toString('hex')}`);
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: fake`,
      `  cluster: {server: "${url}", insecure-skip-tls-verify: true}`,
      'users:',
      '- name: me',
      '  user: {token: t}',
      'contexts:',
      '- name: fake',
      '  context: {cluster: fake, user: me, namespace: demo}',
      'current-context: fake',
      '',
    ].join('\n'),
  );
  return path;
}

const run = (args: string[], input?: Buffer | string) =>
  execa(BIN, args, {
    reject: false,
    timeout: 60_000,
    ...(input !== undefined ? { input } : { stdin: 'ignore' }),
    encoding: 'buffer',
    stripFinalNewline: false,
    // the node running the tests, the one `npm run build` made the snapshot with
    env: { NO_COLOR: '1', PATH: `${dirname(process.execPath)}:/usr/bin:/bin` },
  });
const str = (v: unknown) => Buffer.from(v as Uint8Array).toString();

maybe('the kubectl-nsdebug executable against a fake API server', () => {
  test("a command with stdin: the agent argv, bytes through cat, the exit code, the agent's stderr", async () => {
    const api = await fakeApiServer({ allowed: true });
    try {
      const input = randomBytes(1024 * 1024);
      const r = await run(['pod/busybox', '--kubeconfig', kubeconfigFor(api.url), '-i', '--', 'sh', '-c', 'cat', '9'], input);
      expect(str(r.stderr)).toBe('nsdebug-agent: done\n');
      expect(r.exitCode).toBe(9);
      expect(Buffer.from(r.stdout as unknown as Uint8Array).equals(input)).toBe(true);
      expect(api.execs).toEqual([
        {
          path: '/api/v1/namespaces/nsdebug-system/pods/nsdebug-agent-node-1/exec',
          command: [
            'nsdebug-agent',
            'enter',
            `--contract=${CONTRACT_VERSION}`,
            `--container-id=${ID('a')}`,
            `--pod-uid=${UID}`,
            '--pod=demo/busybox',
            '--container=busybox',
            '--framed',
            '--',
            'sh',
            '-c',
            'cat',
            '9',
          ],
        },
      ]);
    } finally {
      api.server.closeAllConnections();
      api.server.close();
    }
  });

  test('ps and a forbidden user, one line each', async () => {
    const api = await fakeApiServer({ allowed: false });
    try {
      const denied = await run(['pod/busybox', '--kubeconfig', kubeconfigFor(api.url), '--', 'true']);
      expect([denied.exitCode, str(denied.stderr)]).toEqual([
        66,
        'error: you may not exec into pod demo/busybox: missing permission create pods/exec in namespace demo (no RBAC policy matched); ask your cluster admin for it\n',
      ]);
      expect(api.execs).toEqual([]);
      const missing = await run(['ps', '-n', 'demo', 'pod/nope', '--kubeconfig', kubeconfigFor(api.url)]);
      expect([missing.exitCode, str(missing.stderr)]).toEqual([
        65,
        "error: pod nope not found in namespace demo; check the name, or pass -n with the pod's namespace\n",
      ]);
    } finally {
      api.server.closeAllConnections();
      api.server.close();
    }
  });

  test('--help needs no cluster and lists the subcommands', async () => {
    const r = await run(['--help']);
    expect(r.exitCode).toBe(0);
    const out = str(r.stdout);
    expect(out).toContain('$ kubectl nsdebug TARGET');
    expect(out).toMatch(/^ {2}ps +List a container's processes/m);
    expect(str(r.stderr)).toBe('');
  });
});
