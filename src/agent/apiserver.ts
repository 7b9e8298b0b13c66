// The agent's few API requests (session authorization, and publishing its live sessions), made with the pod's own
// service-account token and CA over node:https: client-node would cost every agent start ~150 ms.
// The token is read for each request because kubelet rotates projected tokens.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const REQUEST_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 4 << 20;
/** A watch the server asks to end after 5 min (timeoutSeconds) that stays silent longer is dead. */
const WATCH_IDLE_TIMEOUT_MS = 330_000;

export interface ApiResponse {
  status: number;
  body: unknown;
  /** the API server's clock (its Date header), ms since the epoch */
  serverTime?: number;
}

/** One watch event: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR, and its object. */
export interface WatchEvent {
  type: string;
  object?: { metadata?: { resourceVersion?: string; uid?: string }; code?: number };
}

export interface ApiWatch {
  /** the HTTP status once the server ends the watch (or 0 when the connection failed) */
  done: Promise<number>;
  stop(): void;
}

export interface InClusterApi {
  request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<ApiResponse>;
  /** a watch request (path with ?watch=1…): onEvent for every event until the server ends it or stop() */
  watch(path: string, onEvent: (event: WatchEvent) => void): ApiWatch;
}

/** The message of a metav1.Status body, or the HTTP status. */
export function apiMessage(res: ApiResponse): string {
  const message = (res.body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : `HTTP ${res.status}`;
}

export function inClusterApi(env = process.env, dir = SERVICE_ACCOUNT_DIR): InClusterApi {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const credentials = () => {
    if (!host) throw new Error('KUBERNETES_SERVICE_HOST is not set: the agent is not running in a pod');
    try {
      return { token: readFileSync(join(dir, 'token'), 'utf8').trim(), ca: readFileSync(join(dir, 'ca.crt')) };
    } catch {
      throw new Error(`the agent has no service-account token in ${dir} (is automountServiceAccountToken off?)`);
    }
  };
  return {
    watch: (path, onEvent) => {
      let stop = () => undefined as void;
      const done = new Promise<number>((resolve) => {
        let token: string;
        let ca: Buffer;
        try {
          ({ token, ca } = credentials());
        } catch {
          resolve(0);
          return;
        }
        const req = request(
          {
            host,
            port,
            path,
            method: 'GET',
            ca,
            timeout: WATCH_IDLE_TIMEOUT_MS,
            headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
          },
          (res) => {
            let pending = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              pending += chunk;
              if (pending.length > MAX_RESPONSE_BYTES) {
                req.destroy();
                return;
              }
              const lines = pending.split('\n');
              pending = lines.pop() ?? '';
              for (const line of lines) {
                if (!line.trim()) continue;
                try {
                  onEvent(JSON.parse(line) as WatchEvent);
                } catch {
                  req.destroy();
                  return;
                }
              }
            });
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('close', () => resolve(res.statusCode ?? 0));
          },
        );
        stop = () => req.destroy();
        req.on('timeout', () => req.destroy());
        req.on('error', () => resolve(0));
        req.end();
      });
      return { done, stop: () => stop() };
    },
    request: (method, path, body) =>
      new Promise((resolve, reject) => {
        let token: string;
        let ca: Buffer;
        try {
          ({ token, ca } = credentials());
        } catch (err) {
          return reject(err as Error);
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
