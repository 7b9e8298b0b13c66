// The audit trail: each `enter` process reports its session to the resident `serve` process over
// a unix socket; serve writes one JSON line per session to the agent's log. A session whose
// process dies without reporting an end still gets its line, with exitCode null.
import { mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

import type { SessionRequest } from '../contract.js';

export const RUN_DIR = process.env.NSDEBUG_RUN_DIR ?? '/run/nsdebug';
export const AUDIT_SOCKET = join(RUN_DIR, 'audit.sock');

/** What the audit line says of a session's request. */
export function sessionRecord(req: Partial<SessionRequest>): Record<string, unknown> {
  const { containerId, podUid, pod, container, node, command, tools, tty, readOnly, namespaces, privileged, user } = req;
  return { pod, container, containerId, podUid, node, command, tools, tty, readOnly, privileged, user, requestedNamespaces: namespaces };
}

export type AuditRecord = Record<string, unknown> & { event: 'start' | 'end' };

export interface AuditChannel {
  send(record: AuditRecord): void;
  close(): Promise<void>;
}

/** Connect to serve's audit socket; without a serve process (a bare node), records are dropped. */
export function openAuditChannel(path = AUDIT_SOCKET): Promise<AuditChannel> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    const channel: AuditChannel = {
      send: (record) => void socket.write(`${JSON.stringify(record)}\n`),
      close: () => new Promise((done) => socket.end(done)),
    };
    socket.once('connect', () => resolve(channel));
    socket.once('error', () => resolve({ send: () => undefined, close: async () => undefined }));
  });
}

/** serve's side: one `log` call per session, when it ends or its process disappears. */
export function startAuditServer(log: (line: Record<string, unknown>) => void, path = AUDIT_SOCKET): Promise<Server> {
  mkdirSync(RUN_DIR, { recursive: true, mode: 0o700 });
  rmSync(path, { force: true });
  const server = createServer((socket: Socket) => {
    let buffered = '';
    let start: Record<string, unknown> | undefined;
    let ended = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let record: AuditRecord;
        try {
          record = JSON.parse(line) as AuditRecord;
        } catch {
          continue;
        }
        if (record.event === 'start') start = record;
        else if (record.event === 'end' && !ended) {
          ended = true;
          log(sessionLine({ ...start, ...record }));
        }
      }
    });
    socket.on('close', () => {
      if (!ended && start)
        log(sessionLine({ ...start, end: new Date().toISOString(), exitCode: null, error: 'the session process ended without reporting' }));
    });
    socket.on('error', () => undefined);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

function sessionLine(record: Record<string, unknown>): Record<string, unknown> {
  const { event: _event, ...rest } = record;
  void _event;
  const start = typeof rest.start === 'string' ? Date.parse(rest.start) : NaN;
  const end = typeof rest.end === 'string' ? Date.parse(rest.end) : NaN;
  return { msg: 'session', ...rest, durationMs: Number.isNaN(start) || Number.isNaN(end) ? null : end - start };
}
