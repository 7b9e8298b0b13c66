// The agent's report of itself, published as a Lease named after its pod (what status lists):
// replaced in place, created when missing, the API server's refusal reported; and renewed.
import { jest } from '@jest/globals';

import { agentReportLease, publishAgentReport, reportPeriodically } from '../../../src/agent/agent-report.js';
import type { ApiResponse, InClusterApi } from '../../../src/agent/apiserver.js';
import { AGENT_REPORT, CONTRACT_VERSION, REPORT_EVERY_S, type AgentInfo } from '../../../src/contract.js';
import { reportOfLease } from '../../../src/kube/status.js';

const agent = { namespace: 'nsdebug-system', pod: 'nsdebug-agent-x7k2p', podUid: 'u-1', node: 'worker-1' };
const info: AgentInfo = {
  version: '0.1.0',
  contractVersion: CONTRACT_VERSION,
  runtime: 'containerd',
  cgroupVersion: 'v2',
  cgroupDriver: 'systemd',
  kernel: '6.12.0',
  checks: [{ name: 'toolbox', ok: true, detail: 'x' }],
};

function fakeApi(answer: (method: string) => ApiResponse) {
  const calls: Array<{ method: string; path: string; body?: unknown }> = [];
  const api: InClusterApi = {
    request: async (method, path, body) => {
      calls.push({ method, path, body });
      return answer(method);
    },
    watch: () => ({ done: Promise.resolve(0), stop: () => undefined }),
  };
  return { api, calls };
}

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/nsdebug-system/leases';

describe("the agent's report", () => {
  test('a Lease named after the pod, owned by it, labelled, its report what status reads back', () => {
    const at = new Date('2026-12-02T08:00:00.123Z');
    const lease = agentReportLease(info, agent, at) as unknown as Parameters<typeof reportOfLease>[0] & {
      metadata: { ownerReferences: unknown[]; labels: Record<string, string> };
    };
    expect(lease.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: agent.pod, uid: 'u-1' }]);
    expect(lease.metadata.labels[AGENT_REPORT.label]).toBe('true');
    expect(lease.spec).toEqual({
      holderIdentity: agent.pod,
      leaseDurationSeconds: 3 * REPORT_EVERY_S,
      renewTime: '2026-12-02T08:00:00.123000Z',
    });
    expect(reportOfLease(lease)).toEqual({
      pod: agent.pod,
      info,
      renewed: at,
      expires: new Date(at.getTime() + 3 * REPORT_EVERY_S * 1000),
    });
  });

  test('replaced in place; created when it is not there yet', async () => {
    const there = fakeApi(() => ({ status: 200, body: {} }));
    await publishAgentReport(there.api, agent, info);
    expect(there.calls.map((c) => [c.method, c.path])).toEqual([['PUT', `${LEASES}/${agent.pod}`]]);
    const missing = fakeApi((m) => (m === 'PUT' ? { status: 404, body: {} } : { status: 201, body: {} }));
    await publishAgentReport(missing.api, agent, info);
    expect(missing.calls.map((c) => [c.method, c.path])).toEqual([
      ['PUT', `${LEASES}/${agent.pod}`],
      ['POST', LEASES],
    ]);
  });

  test("the API server's refusal is the error, in its words", async () => {
    const forbidden = fakeApi(() => ({ status: 403, body: { message: 'leases is forbidden: cannot update' } }));
    await expect(publishAgentReport(forbidden.api, agent, info)).rejects.toThrow('leases is forbidden: cannot update');
  });

  test('published at once, then renewed with a fresh report; a failure is a warning, never a throw', async () => {
    jest.useFakeTimers();
    try {
      const published: AgentInfo[] = [];
      const warned: string[] = [];
      let n = 0;
      const reporting = reportPeriodically(
        info,
        async (i) => {
          published.push(i);
          if (published.length === 2) throw new Error('API down');
        },
        async () => ({ ...info, kernel: `renewed-${++n}` }),
        (msg, fields) => warned.push(`${msg}: ${String(fields.error)}`),
        1000,
      );
      await reporting.published;
      expect(published.map((i) => i.kernel)).toEqual(['6.12.0']);
      await jest.advanceTimersByTimeAsync(2000);
      expect(published.map((i) => i.kernel)).toEqual(['6.12.0', 'renewed-1', 'renewed-2']);
      expect(warned).toEqual(['could not publish the agent report (kubectl nsdebug status): API down']);
      reporting.stop();
      await jest.advanceTimersByTimeAsync(5000);
      expect(published).toHaveLength(3);
    } finally {
      jest.useRealTimers();
    }
  });
});
