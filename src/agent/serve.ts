// `nsdebug-agent serve`: the DaemonSet's main process. It checks the node, cleans up after
// sessions of a crashed predecessor, writes the audit log, and on SIGTERM ends every session.
import { writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { ExitCode } from '../contract.js';
import { startAuditServer } from './audit.js';
import { collectInfo } from './info.js';
import { processExists } from './procfs.js';
import { liveSessionOwners, removeStaleSessions } from './session-cgroup.js';

/** Structured log: one JSON object per line on stdout (the container log). */
export function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  writeSync(1, `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

export async function serve(): Promise<number> {
  const info = await collectInfo();
  for (const c of info.checks) log(c.ok ? 'info' : 'error', 'check', { check: c.name, ok: c.ok, detail: c.detail });
  const { checks: _checks, ...summary } = info;
  void _checks;
  log('info', 'started', summary);
  for (const name of await removeStaleSessions()) log('warn', 'removed a session left by a dead agent process', { cgroup: name });

  const server = await startAuditServer((line) => log('info', 'session', line));
  const signal = await new Promise<string>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve(sig));
  });
  const owners = liveSessionOwners();
  log('info', 'shutting down', { signal, sessions: owners.length });
  // Each session process ends its session and tells its user why (see session.ts).
  for (const pid of owners) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (owners.some(processExists) && Date.now() < deadline) await sleep(50);
  await new Promise((resolve) => server.close(resolve));
  return ExitCode.OK;
}
