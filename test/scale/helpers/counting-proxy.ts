// A request-counting proxy of the tests' own in front of the API server: the CLI under test gets a
// kubeconfig that points at it (plain HTTP on loopback), and it forwards every request, upgrades
// (exec, port-forward) included, over TLS with the admin's client certificate. What it records —
// method, path and query of each request — is the count the scale goals are about, seen from
// outside the CLI.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';

export interface Counted {
  method: string;
  path: string;
  query: URLSearchParams;
  upgrade: boolean;
}

export interface CountingProxy {
  /** a kubeconfig whose only cluster is this proxy (the admin's rights) */
  kubeconfig: string;
  requests: Counted[];
  /** the requests recorded since the last reset, and a fresh record */
  take(): Counted[];
  close(): Promise<void>;
}

interface Upstream {
  url: URL;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** The admin kubeconfig's server and credentials (KUBECONFIG, as cluster.sh writes it). */
function upstreamOf(kubeconfig: string): Upstream {
  const raw = JSON.parse(
    execFileSync('kubectl', ['config', 'view', '--raw', '--minify', '-o', 'json'], {
      env: { ...process.env, KUBECONFIG: kubeconfig },
    }).toString(),
  ) as {
    clusters: Array<{ cluster: { server: string; 'certificate-authority-data': string } }>;
    users: Array<{ user: { 'client-certificate-data': string; 'client-key-data': string } }>;
  };
  const [cluster] = raw.clusters;
  const [user] = raw.users;
  if (!cluster || !user) throw new Error(`no cluster or user in ${kubeconfig}`);
  const b64 = (s: string) => Buffer.from(s, 'base64');
  return {
    url: new URL(cluster.cluster.server),
    ca: b64(cluster.cluster['certificate-authority-data']),
    cert: b64(user.user['client-certificate-data']),
    key: b64(user.user['client-key-data']),
  };
}

const withHost = (headers: IncomingHttpHeaders, host: string) => ({ ...headers, host });

export async function startCountingProxy(kubeconfig = process.env.KUBECONFIG ?? ''): Promise<CountingProxy> {
  const up = upstreamOf(kubeconfig);
  let requests: Counted[] = [];
  const record = (method: string, url: string, upgrade: boolean) => {
    const u = new URL(url, 'http://proxy');
    requests.push({ method, path: u.pathname, query: u.searchParams, upgrade });
  };
  const tls = { ca: up.ca, cert: up.cert, key: up.key };
  const server: Server = createServer((req, res) => {
    record(req.method ?? 'GET', req.url ?? '/', false);
    const forwarded = httpsRequest(
      { ...tls, host: up.url.hostname, port: up.url.port, method: req.method, path: req.url, headers: withHost(req.headers, up.url.host) },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  });
  server.on('upgrade', (req, socket, head) => {
    record(req.method ?? 'GET', req.url ?? '/', true);
    const upstream = tlsConnect({ ...tls, host: up.url.hostname, port: Number(up.url.port) }, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (const [name, value] of Object.entries(withHost(req.headers, up.url.host)))
        for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined) lines.push(`${name}: ${v}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    const end = () => {
      upstream.destroy();
      socket.destroy();
    };
    upstream.on('error', end);
    socket.on('error', end);
    upstream.on('close', end);
    socket.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const dir = mkdtempSync(join(tmpdir(), 'nsdebug-counted-'));
  const file = join(dir, 'kubeconfig');
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      // client-node speaks plain HTTP only to a server marked so
      'clusters: [{ name: counted, cluster: { server: "http://127.0.0.1:' + port + '", insecure-skip-tls-verify: true } }]',
      'users: [{ name: counted, user: {} }]',
      'contexts: [{ name: counted, context: { cluster: counted, user: counted, namespace: default } }]',
      'current-context: counted',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return {
    kubeconfig: file,
    get requests() {
      return requests;
    },
    take() {
      const taken = requests;
      requests = [];
      return taken;
    },
    close: () =>
      new Promise<void>((resolve) => {
        rmSync(dir, { recursive: true, force: true });
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** "GET /api/v1/nodes?limit=500" lines, for a failing assertion to show. */
export const describeRequests = (rs: Counted[]) => rs.map((r) => `${r.method} ${r.path}${r.query.size ? `?${r.query}` : ''}`);
