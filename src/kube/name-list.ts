// The names of many objects at once, for completion: the API server prints them as a Table of
// names only (server-side printing, includeObject=None) from its watch cache (resourceVersion=0),
// in one call. On 10,000 pods that is ~1 MB the server has at hand, where a list of pod objects
// is ~40 MB read through etcd and parsed here. Requested over node:https with the kubeconfig's
// own credentials (client-node's typed lists cannot ask for a Table).
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';

import type { KubeConnection } from './config.js';

/** A Table of names larger than this is not read to its end. */
const MAX_TABLE_BYTES = 64 << 20;

const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io, application/json';

/** The Name column of a meta.k8s.io Table; [] for anything else. */
export function namesOfTable(body: unknown): string[] {
  const table = body as { kind?: unknown; columnDefinitions?: Array<{ name?: unknown }>; rows?: Array<{ cells?: unknown[] }> };
  if (table?.kind !== 'Table' || !Array.isArray(table.rows)) return [];
  const column = Math.max(
    0,
    (table.columnDefinitions ?? []).findIndex((c) => c.name === 'Name'),
  );
  return table.rows.flatMap((r) => {
    const name = r.cells?.[column];
    return typeof name === 'string' && name ? [name] : [];
  });
}

/** The names at a collection path (/api/v1/namespaces/NS/pods, /api/v1/nodes…); rejects on any failure. */
export async function listNames(conn: KubeConnection, path: string): Promise<string[]> {
  const url = new URL(`${conn.server.replace(/\/+$/, '')}${path}`);
  url.searchParams.set('resourceVersion', '0');
  url.searchParams.set('includeObject', 'None');
  const opts: RequestOptions = {
    method: 'GET',
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port || (url.protocol === 'http:' ? 80 : 443),
    path: `${url.pathname}${url.search}`,
    headers: { Accept: TABLE_ACCEPT },
  };
  await conn.kc.applyToHTTPSOptions(opts);
  // a kubeconfig may name a plain-HTTP server (one on loopback, marked insecure-skip-tls-verify)
  const request = url.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise<string[]>((resolve, reject) => {
    const req = request(opts, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_TABLE_BYTES) req.destroy(new Error(`more than ${MAX_TABLE_BYTES} bytes of names`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode} for ${url.pathname}`));
        try {
          resolve(namesOfTable(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
        } catch (err) {
          reject(err as Error);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (conn.requestTimeoutMs) req.setTimeout(conn.requestTimeoutMs, () => req.destroy(new Error('timed out')));
    req.end();
  });
}
