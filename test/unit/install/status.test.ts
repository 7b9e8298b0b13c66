// `kubectl nsdebug status` from a fake API: a row per node from the reports the agents publish,
// nodes without an agent included, versions compared with the CLI's, the agent's failed checks
// shown; the summary of a thousand nodes, and the exit code that says "degraded".
import { AGENT_REPORT, CONTRACT_VERSION, ExitCode, type AgentInfo } from '../../../src/contract.js';
import { formatStatusSummary, formatStatusTable, LISTED_NODES, sessionAuthLine, statusFailure } from '../../../src/cli/status.js';
import { collectStatus, parseAgentInfo, reportOfLease, type LeaseLike, type StatusClient } from '../../../src/kube/status.js';
import type { NodeLike, PodLike } from '../../../src/pod.js';

const node = (name: string): NodeLike => ({
  metadata: { name },
  status: {
    conditions: [{ type: 'Ready', status: 'True' }],
    nodeInfo: { kernelVersion: '6.1.0-18-amd64', containerRuntimeVersion: 'containerd://1.6.20' },
  },
});
const agentPod = (nodeName: string, ready = true): PodLike => ({
  metadata: { name: `nsdebug-agent-${nodeName}`, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { nodeName },
  status: {
    phase: 'Running',
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    containerStatuses: [{ name: 'agent', ready, state: { running: {} } }],
  },
});
const info = (over: Partial<AgentInfo> = {}): AgentInfo => ({
  version: '0.1.0',
  contractVersion: CONTRACT_VERSION,
  runtime: 'containerd',
  cgroupVersion: 'hybrid',
  cgroupDriver: 'cgroupfs',
  kernel: '6.18.44',
  checks: [{ name: 'toolbox', ok: true, detail: '/usr/lib/nsdebug/busybox' }],
  ...over,
});

/** The Lease an agent publishes of its report (src/agent/agent-report.ts), renewed at renewed. */
const reportLease = (pod: string, answer: AgentInfo | string, renewed = new Date()): LeaseLike => ({
  metadata: {
    name: pod,
    labels: { [AGENT_REPORT.label]: 'true' },
    annotations: { [AGENT_REPORT.annotation]: typeof answer === 'string' ? answer : JSON.stringify(answer) },
  },
  spec: { renewTime: renewed, leaseDurationSeconds: 900 },
});

function client(
  nodes: NodeLike[],
  pods: PodLike[],
  infos: Record<string, AgentInfo | string>,
  sessionAuth: Awaited<ReturnType<StatusClient['sessionAuth']>> = { resource: false, policy: false },
): StatusClient & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    sessionAuth: async () => (calls.push('sessionAuth'), sessionAuth),
    listNodes: async () => (calls.push('nodes'), nodes),
    listAgentPods: async () => (calls.push('pods'), pods),
    listAgentReports: async () => (calls.push('reports'), Object.entries(infos).map(([pod, i]) => reportLease(pod, i))),
  };
}

describe('collectStatus', () => {
  test("a row per node, in name order, with the agent's own report", async () => {
    const c = client([node('w2'), node('w1')], [agentPod('w1'), agentPod('w2')], {
      'nsdebug-agent-w1': info(),
      'nsdebug-agent-w2': info({ kernel: '6.1' }),
    });
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, c);
    expect(
      report.nodes.map((n) => [n.node, n.pod, n.ready, n.version, n.contractVersion, n.runtime, n.cgroup, n.kernel, n.problems]),
    ).toEqual([
      ['w1', 'nsdebug-agent-w1', true, '0.1.0', CONTRACT_VERSION, 'containerd', 'hybrid/cgroupfs', '6.18.44', []],
      ['w2', 'nsdebug-agent-w2', true, '0.1.0', CONTRACT_VERSION, 'containerd', 'hybrid/cgroupfs', '6.1', []],
    ]);
    expect(formatStatusTable(report)).toBe(
      [
        'NODE  AGENT POD         READY  VERSION  CONTRACT  RUNTIME     CGROUP           KERNEL',
        `w1    nsdebug-agent-w1  yes    0.1.0    ${CONTRACT_VERSION}         containerd  hybrid/cgroupfs  6.18.44`,
        `w2    nsdebug-agent-w2  yes    0.1.0    ${CONTRACT_VERSION}         containerd  hybrid/cgroupfs  6.1`,
        '',
      ].join('\n'),
    );
    expect(statusFailure(report, 'summary')).toBeUndefined();
  });

  test('a node without an agent is shown with what the Node object says', async () => {
    const report = await collectStatus(
      { namespace: 'nsdebug-system', cliVersion: '0.1.0' },
      client([node('w1'), node('w2')], [agentPod('w1')], { 'nsdebug-agent-w1': info() }),
    );
    const w2 = report.nodes.find((n) => n.node === 'w2');
    expect(w2).toEqual({
      node: 'w2',
      ready: false,
      hostsSessions: false,
      state: 'no agent pod',
      runtime: 'containerd 1.6.20',
      runtimeVersion: 'containerd 1.6.20',
      kernel: '6.1.0-18-amd64',
      problems: ['no agent pod on this node'],
    });
    expect(formatStatusTable(report).split('\n')[2]).toBe(
      'w2    <none>            -      -        -         containerd 1.6.20  -                6.1.0-18-amd64  no agent pod on this node',
    );
    const failure = statusFailure(report, 'wide');
    expect([failure?.message, failure?.exitCode]).toEqual([
      'degraded: 1 of 2 node(s) cannot host a session now (the other 1 can): see PROBLEMS',
      ExitCode.DEGRADED,
    ]);
  });

  test('nothing installed says how to install', async () => {
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, client([node('w1')], [], {}));
    const failure = statusFailure(report, 'summary');
    expect([failure?.message, failure?.exitCode]).toEqual([
      'nsdebug is not installed in namespace nsdebug-system: run `kubectl nsdebug install`',
      ExitCode.AGENT_UNAVAILABLE,
    ]);
  });

  test("versions that differ from the CLI's are marked; a different contract says what to do", async () => {
    const c = client([node('a'), node('b')], [agentPod('a'), agentPod('b')], {
      'nsdebug-agent-a': info({ version: '0.0.9' }),
      'nsdebug-agent-b': info({ version: '0.2.0', contractVersion: CONTRACT_VERSION + 1 }),
    });
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, c);
    expect(report.nodes[0]?.problems).toEqual(["agent 0.0.9 differs from the CLI's 0.1.0"]);
    expect(report.nodes[1]?.problems).toEqual([
      `contract ${CONTRACT_VERSION + 1} differs from the CLI's ${CONTRACT_VERSION}: sessions will be refused; run \`kubectl nsdebug install\` with this CLI`,
    ]);
    const table = formatStatusTable(report);
    expect(table).toContain('0.0.9 (cli 0.1.0)');
    expect(table).toContain(`${CONTRACT_VERSION + 1} (cli ${CONTRACT_VERSION})`);
  });

  test('the table shows what an agent reports, never a control sequence the terminal would obey', async () => {
    const c = client([node('a')], [agentPod('a')], { 'nsdebug-agent-a': info({ kernel: '6.1\x1b]52;c;cm0gLXJmIC8=\x07' }) });
    const table = formatStatusTable(await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, c));
    expect(table).not.toContain('\x1b');
    expect(table).toContain(String.raw`6.1\x1b]52;c;cm0gLXJmIC8=\x07`);
  });

  test('a runtime the agent could not name is taken from the Node object', async () => {
    const report = await collectStatus(
      { namespace: 'nsdebug-system', cliVersion: '0.1.0' },
      client([node('a')], [agentPod('a')], { 'nsdebug-agent-a': info({ runtime: 'unknown' }) }),
    );
    expect(report.nodes[0]?.runtime).toBe('containerd 1.6.20');
  });

  test('a running agent that is not ready still answers: its failed checks are the reason', async () => {
    const failed = info({ checks: [{ name: 'session cleanup', ok: false, detail: 'cannot create a session cgroup' }] });
    const report = await collectStatus(
      { namespace: 'nsdebug-system', cliVersion: '0.1.0' },
      client([node('a')], [agentPod('a', false)], { 'nsdebug-agent-a': failed }),
    );
    expect(report.nodes[0]?.problems).toEqual([
      'not ready: running, not ready (readiness check pending)',
      'check failed: session cleanup: cannot create a session cgroup',
    ]);
  });

  test('a running agent that has published no report is a problem of its row, not of the command', async () => {
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, client([node('a')], [agentPod('a')], {}));
    expect(report.nodes[0]).toMatchObject({
      ready: true,
      hostsSessions: true,
      problems: ['the agent has not published its report (an agent older than this CLI? run `kubectl nsdebug install`)'],
      runtime: 'containerd 1.6.20',
    });
  });

  test('a report the agent stopped renewing is called stale', async () => {
    const c = client([node('a')], [agentPod('a')], {});
    c.listAgentReports = async () => [reportLease('nsdebug-agent-a', info(), new Date('2026-01-01T00:00:00Z'))];
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0', now: new Date('2026-01-01T01:00:00Z') }, c);
    expect(report.nodes[0]?.problems).toEqual(["the agent's report is stale (last renewed 2026-01-01T00:00:00.000Z)"]);
  });

  test('a pod that is not running, on a node that is not Ready: both said, no session there', async () => {
    const creating: PodLike = {
      metadata: { name: 'nsdebug-agent-a' },
      spec: { nodeName: 'a' },
      status: { containerStatuses: [{ name: 'agent', state: { waiting: { reason: 'ContainerCreating' } } }] },
    };
    const down: NodeLike = { ...node('a'), status: { ...node('a').status, conditions: [{ type: 'Ready', status: 'Unknown' }] } };
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, client([down], [creating], {}));
    expect(report.nodes[0]).toMatchObject({ hostsSessions: false, problems: ['node is not Ready', 'not ready: ContainerCreating'] });
  });

  test('whatever the number of nodes, four calls: nodes, agent pods, reports, session authorization', async () => {
    const names = Array.from({ length: 1000 }, (_, i) => `kwok-${String(i).padStart(4, '0')}`);
    const c = client(
      names.map(node),
      names.map((n) => agentPod(n)),
      Object.fromEntries(names.map((n) => [`nsdebug-agent-${n}`, info()])),
    );
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, c);
    expect(report.nodes).toHaveLength(1000);
    expect(c.calls.sort()).toEqual(['nodes', 'pods', 'reports', 'sessionAuth']);
  });
});

describe('the summary', () => {
  const many = (n: number, notReady: number, missing: number) => {
    const names = Array.from({ length: n }, (_, i) => `kwok-${String(i).padStart(4, '0')}`);
    const pods = names.slice(missing).map((name, i) => agentPod(name, i >= notReady));
    return client(
      names.map((name, i) => ({
        ...node(name),
        status: {
          ...node(name).status,
          nodeInfo: { kernelVersion: '6.12', containerRuntimeVersion: i % 10 ? 'containerd://2.4.2' : 'containerd://1.7.0' },
        },
      })),
      pods,
      Object.fromEntries(pods.map((p) => [p.metadata!.name!, info({ cgroupVersion: 'v2', cgroupDriver: 'systemd' })])),
    );
  };

  test('a thousand nodes: counts by state, version, runtime and cgroup; the ones that cannot host a session listed, bounded', async () => {
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, many(1000, 25, 3));
    const text = formatStatusSummary(report);
    const lines = text.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'nodes: 1000; ready to host a session: 972; not: 25 not ready: running, not ready (readiness check pending); 3 no agent pod on this node',
      `agent versions: 0.1.0 (contract ${CONTRACT_VERSION}) on 997; this CLI: 0.1.0 (contract ${CONTRACT_VERSION})`,
      'runtimes: containerd 2.4.2 on 900, containerd 1.7.0 on 100',
      'cgroups: v2/systemd on 997',
    ]);
    expect(lines[5]).toBe('cannot host a session (28):');
    expect(lines[6]).toMatch(/^NODE +AGENT POD +PROBLEMS$/);
    expect(lines[7]).toMatch(/^kwok-0000 +<none> +node|^kwok-0000 +<none> +no agent pod on this node$/);
    expect(lines.filter((l) => l.startsWith('kwok-'))).toHaveLength(LISTED_NODES);
    expect(text).toContain('… and 8 more: kubectl nsdebug status -o wide\n');
    const failure = statusFailure(report, 'summary');
    expect([failure?.message, failure?.exitCode]).toEqual([
      'degraded: 28 of 1000 node(s) cannot host a session now (the other 972 can): see the list above',
      ExitCode.DEGRADED,
    ]);
  });

  test('all good: four lines, exit 0', async () => {
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, many(3, 0, 0));
    expect(formatStatusSummary(report).split('\n')).toHaveLength(5);
    expect(statusFailure(report, 'summary')).toBeUndefined();
  });
});

describe("the agent's answer", () => {
  test('a Lease that is not a report is none', () => {
    expect(reportOfLease({ metadata: { name: 'x', annotations: { [AGENT_REPORT.annotation]: '{"hello":1}' } } })).toBeUndefined();
    expect(reportOfLease({ metadata: { name: 'x' } })).toBeUndefined();
    expect(reportOfLease(reportLease('x', info()))?.info).toEqual(info());
  });
  test('parses the info JSON and refuses anything else in one line', () => {
    expect(parseAgentInfo(JSON.stringify(info()))).toEqual(info());
    expect(() => parseAgentInfo('nsdebug-agent: unknown contract 2 (this agent speaks 1)\n')).toThrow(
      'the agent printed no JSON: nsdebug-agent: unknown contract 2 (this agent speaks 1)',
    );
    expect(() => parseAgentInfo('{"hello":1}')).toThrow('the agent answered without a version: is it an nsdebug agent?');
  });
});

describe('session authorization in status', () => {
  test.each([
    [{ resource: false, policy: false }, 'session authorization: not installed (kubectl nsdebug install --session-auth)'],
    [{ resource: true, policy: true }, 'session authorization: installed'],
    [{ resource: true, policy: 'unknown' as const }, 'session authorization: installed (its admission policy is not visible to you)'],
    [{ resource: true, policy: false }, expect.stringMatching(/^session authorization: BROKEN — .*requesters are not pinned/)],
  ])('%j', async (sessionAuth, line) => {
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, client([], [], {}, sessionAuth));
    expect(report.sessionAuth).toEqual(sessionAuth);
    expect(sessionAuthLine(report)).toEqual(line);
  });
});
