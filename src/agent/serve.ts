// `nsdebug-agent serve`: the DaemonSet's main process. It checks the node, cleans up after
// sessions of a crashed predecessor, writes the audit log, and on SIGTERM ends every session.
import { writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { ExitCode, SESSION_PORT } from '../contract.js';
import { loadNativeLibrary } from '../native/libnsdebug.js';
import { publishAgentReport, reportPeriodically } from './agent-report.js';
import { AUDIT_SOCKET, startAuditServer } from './audit.js';
import { apiMessage, inClusterApi } from './apiserver.js';
import { collectInfo } from './info.js';
import { agentIdentity, CONTROL_SOCKET, liveSessions, startControlServer } from './live-sessions.js';
import { processExists } from './procfs.js';
import { configureRecording, recordingPolicy } from './recording.js';
import { SESSION_SOCKET, startSessionServer, stopSignal } from './resident.js';
import { startSessionPort } from './session-port.js';
import { liveSessionOwners, removeStaleSessions } from './session-cgroup.js';

/** Structured log: one JSON object per line on stdout (the container log). */
export function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  writeSync(1, `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

const REPORT_WAIT_MS = 3000;

export async function serve(opts: { maxSessionMs: number }): Promise<number> {
  const info = await collectInfo();
  for (const c of info.checks) log(c.ok ? 'info' : 'error', 'check', { check: c.name, ok: c.ok, detail: c.detail });
  const { checks: _checks, ...summary } = info;
  void _checks;
  log('info', 'started', summary);
  for (const name of await removeStaleSessions()) log('warn', 'removed a session left by a dead agent process', { cgroup: name });

  const signal = new Promise<string>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve(sig));
  });
  const stopping = stopSignal();
  void signal.then((sig) => stopping.stop({ reason: 'agent stopping', message: `the agent on this node is shutting down (${sig})` }));
  const limits = { onStop: stopping.onStop, maxSessionMs: opts.maxSessionMs };
  const auditServer = await startAuditServer((line) => log('info', 'session', line));
  // Each live session is published as a Lease (kubectl nsdebug sessions); those a crashed
  // predecessor in this pod left are removed first.
  const agent = agentIdentity();
  if (agent) {
    liveSessions.publishTo({ api: inClusterApi(), agent, warn: (msg, fields) => log('warn', msg, fields) });
    await liveSessions.removeStale().then(
      (n) => n && log('warn', 'removed the session leases a dead agent process left', { leases: n }),
      (err: Error) => log('warn', "could not list this node's session leases", { error: err.message }),
    );
  } else log('warn', 'sessions are not published: the DaemonSet names no pod (NSDEBUG_POD_NAME, NSDEBUG_POD_UID, NSDEBUG_POD_NAMESPACE)');
  // The report `kubectl nsdebug status` reads goes out before the sockets listen, so that a
  // ready agent (its probe needs them) has reported; an API server that does not answer within
  // REPORT_WAIT_MS does not hold sessions back.
  const reporting = agent
    ? reportPeriodically(
        info,
        (report) => publishAgentReport(inClusterApi(), agent, report),
        () => collectInfo({ serving: true }),
        (msg, fields) => log('warn', msg, fields),
      )
    : undefined;
  if (reporting) await Promise.race([reporting.published, sleep(REPORT_WAIT_MS)]);
  const controlServer = await startControlServer(liveSessions, (line) => log('info', 'control', line));
  const recording = recordingPolicy();
  if (recording) {
    const api = inClusterApi();
    configureRecording({
      policy: recording,
      log,
      namespaceLabels: async (namespace) => {
        const res = await api.request('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}`);
        if (res.status !== 200) throw new Error(apiMessage(res));
        return (res.body as { metadata?: { labels?: Record<string, string> } }).metadata?.labels ?? {};
      },
    });
    log('info', 'recording sessions', { ...recording });
  }
  const native = loadNativeLibrary();
  const sessionServer = await startSessionServer(native, (line) => log('info', 'session', line), limits);
  // The session port serves DebugSession-authorized sessions (deploy/session-auth/); it needs
  // to know its node, which the DaemonSet passes from spec.nodeName.
  const node = process.env.NSDEBUG_NODE_NAME;
  const sessionPort = node
    ? await startSessionPort(native, (line) => log('info', 'session', line), limits, { api: inClusterApi(), node })
    : undefined;
  log('info', 'ready', {
    sockets: [AUDIT_SOCKET, SESSION_SOCKET, CONTROL_SOCKET],
    sessionPort: sessionPort ? SESSION_PORT : null,
    maxSessionSeconds: opts.maxSessionMs / 1000,
  });

  await signal;
  reporting?.stop();
  // Resident sessions end through the stop signal; per-session processes get SIGTERM.
  const owners = liveSessionOwners().filter((pid) => pid !== process.pid);
  log('info', 'shutting down', { signal: await signal, sessions: owners.length });
  // Each session process ends its session and tells its user why (see session.ts).
  for (const pid of owners) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while ((owners.some(processExists) || liveSessionOwners().includes(process.pid)) && Date.now() < deadline) await sleep(50);
  await Promise.all(
    [auditServer, controlServer, sessionServer, ...(sessionPort ? [sessionPort] : [])].map(
      (s) => new Promise((resolve) => s.close(resolve)),
    ),
  );
  return ExitCode.OK;
}
