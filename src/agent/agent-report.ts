// The agent's report of itself (what `nsdebug-agent info` prints: versions, runtime, cgroups,
// checks), published as one Lease per agent pod in its namespace, named after the pod and owned by
// it, and renewed every REPORT_EVERY_S. `kubectl nsdebug status` lists these in one call: on a
// thousand nodes, a thousand execs into the agents would take minutes and load every kubelet.
// Best effort, like the session Leases: the agent serves sessions whether or not it could report.
import { AGENT_REPORT, REPORT_EVERY_S, SESSION_LABELS, type AgentInfo } from '../contract.js';
import { apiMessage, type InClusterApi } from './apiserver.js';
import type { AgentIdentity } from './live-sessions.js';

/** A Lease's MicroTime: RFC 3339 with microseconds. */
const microTime = (at: Date) => at.toISOString().replace('Z', '000Z');

export function agentReportLease(info: AgentInfo, agent: AgentIdentity, at: Date): Record<string, unknown> {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: agent.pod,
      namespace: agent.namespace,
      labels: { [AGENT_REPORT.label]: 'true', [SESSION_LABELS.node]: agent.node, 'app.kubernetes.io/part-of': 'nsdebug' },
      annotations: { [AGENT_REPORT.annotation]: JSON.stringify(info) },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: agent.pod, uid: agent.podUid }],
    },
    // three renewals may be missed before status calls the report stale
    spec: { holderIdentity: agent.pod, leaseDurationSeconds: 3 * REPORT_EVERY_S, renewTime: microTime(at) },
  };
}

/** Create or replace this pod's report; rejects with the API server's reason. */
export async function publishAgentReport(api: InClusterApi, agent: AgentIdentity, info: AgentInfo, at = new Date()): Promise<void> {
  const path = `/apis/coordination.k8s.io/v1/namespaces/${agent.namespace}/leases`;
  const lease = agentReportLease(info, agent, at);
  // an unconditional update (no resourceVersion): this pod is the report's only writer
  const replaced = await api.request('PUT', `${path}/${agent.pod}`, lease);
  if (replaced.status === 200) return;
  if (replaced.status !== 404) throw new Error(apiMessage(replaced));
  const created = await api.request('POST', path, lease);
  if (created.status !== 201) throw new Error(apiMessage(created));
}

/** Publish now, then every REPORT_EVERY_S with a fresh `collect()`; returns the stop. */
export function reportPeriodically(
  first: AgentInfo,
  publish: (info: AgentInfo) => Promise<void>,
  collect: () => Promise<AgentInfo>,
  warn: (msg: string, fields: Record<string, unknown>) => void,
  everyMs = REPORT_EVERY_S * 1000,
): { published: Promise<void>; stop: () => void } {
  const attempt = (info: AgentInfo) =>
    publish(info).catch((err: Error) => warn('could not publish the agent report (kubectl nsdebug status)', { error: err.message }));
  const timer = setInterval(() => void collect().then(attempt, () => undefined), everyMs);
  timer.unref();
  return { published: attempt(first), stop: () => clearInterval(timer) };
}
