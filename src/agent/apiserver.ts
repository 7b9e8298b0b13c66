// The agent's few API requests (session authorization only), made with the pod's own
// service-account token and CA over node:https: client-node would cost every agent start ~150 ms.
// The token is read for each request because kubelet rotates projected tokens.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const REQUEST_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 4 << 20;

export interface ApiResponse {
  status: number;
  body: unknown;
  /** the API server's clock (its Date header), ms since the epoch */
  serverTime?: number;
}

export interface InClusterApi {
  request(method: 'GET' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<ApiResponse>;
}

/** The message of a metav1.Status body, or the HTTP status. */
export function apiMessage(res: ApiResponse): string {
  const message = (res.body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : `HTTP ${res.status}`;
}

export function inClusterApi(env = process.env, dir = SERVICE_ACCOUNT_DIR): InClusterApi {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  return {
    request: (method, path, body) =>
      new Promise((resolve, reject) => {
        if (!host) return reject(new Error('KUBERNETES_SERVICE_HOST is not set: the agent is not running in a pod'));
        let token: string;
        let ca: Buffer;
        try {
          token = readFileSync(join(dir, 'token'), 'utf8').trim();
          ca = readFileSync(join(dir, 'ca.crt'));
        } catch {
          return reject(new Error(`the agent has no service-account token in ${dir} (is automountServiceAccountToken off?)`));
        }
        const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const req = request(
          {
            host,
            port,
            path,
            method,
            ca,
            timeout: REQUEST_TIMEOUT_MS,
            headers: {
              authorization: `Bearer ${token}`,
              accept: 'application/json',
              ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`the API server's answer to ${method} ${path} is too large`));
              else chunks.push(chunk);
            });
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let parsed: unknown;
              try {
                parsed = text ? JSON.parse(text) : undefined;
              } catch {
                parsed = { message: text.slice(0, 200) };
              }
              const serverTime = Date.parse(res.headers.date ?? '');
              resolve({ status: res.statusCode ?? 0, body: parsed, ...(Number.isFinite(serverTime) ? { serverTime } : {}) });
            });
          },
        );
        req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out after ${REQUEST_TIMEOUT_MS / 1000}s`)));
        req.on('error', reject);
        req.end(payload);
      }),
  };
}
