// `kubectl nsdebug status` from a fake API: a row per node, nodes without an agent included,
// versions compared with the CLI's, the agent's failed checks shown.
import { CONTRACT_VERSION, type AgentInfo } from '../../../src/contract.js';
import { formatStatusTable, sessionAuthLine, statusHint } from '../../../src/cli/status.js';
import { collectStatus, parseAgentInfo, statusArgv, type StatusClient } from '../../../src/kube/status.js';
import type { NodeLike, PodLike } from '../../../src/pod.js';

const node = (name: string): NodeLike => ({
  metadata: { name },
  status: { nodeInfo: { kernelVersion: '6.1.0-18-amd64', containerRuntimeVersion: 'containerd://1.6.20' } },
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

function client(
  nodes: NodeLike[],
  pods: PodLike[],
  infos: Record<string, AgentInfo | Error>,
  sessionAuth: Awaited<ReturnType<StatusClient['sessionAuth']>> = { resource: false, policy: false },
): StatusClient & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    sessionAuth: async () => sessionAuth,
    listNodes: async () => nodes,
    listAgentPods: async () => pods,
    agentInfo: async (_ns, pod) => {
      asked.push(pod);
      const answer = infos[pod];
      if (!answer) throw new Error(`no fake info for ${pod}`);
      if (answer instanceof Error) throw answer;
      return answer;
    },
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
    expect(statusHint(report)).toBeUndefined();
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
      runtime: 'containerd 1.6.20',
      kernel: '6.1.0-18-amd64',
      problems: ['no agent pod on this node'],
    });
    expect(formatStatusTable(report).split('\n')[2]).toBe(
      'w2    <none>            -      -        -         containerd 1.6.20  -                6.1.0-18-amd64  no agent pod on this node',
    );
    expect(statusHint(report)).toBe('1 of 2 node(s) cannot host a session now: see PROBLEMS');
  });

  test('nothing installed says how to install', async () => {
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, client([node('w1')], [], {}));
    expect(statusHint(report)).toBe('nsdebug is not installed in namespace nsdebug-system: run `kubectl nsdebug install`');
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

  test('an agent that cannot be asked is a problem of its row, not of the command', async () => {
    const report = await collectStatus(
      { namespace: 'nsdebug-system', cliVersion: '0.1.0' },
      client([node('a')], [agentPod('a')], { 'nsdebug-agent-a': new Error('exec forbidden') }),
    );
    expect(report.nodes[0]).toMatchObject({ ready: true, problems: ['agent info failed: exec forbidden'], runtime: 'containerd 1.6.20' });
  });

  test("a pod that is not running is not exec'd into", async () => {
    const creating: PodLike = {
      metadata: { name: 'nsdebug-agent-a' },
      spec: { nodeName: 'a' },
      status: { containerStatuses: [{ name: 'agent', state: { waiting: { reason: 'ContainerCreating' } } }] },
    };
    const c = client([node('a')], [creating], {});
    const report = await collectStatus({ namespace: 'nsdebug-system', cliVersion: '0.1.0' }, c);
    expect(c.asked).toEqual([]);
    expect(report.nodes[0]?.problems).toEqual(['not ready: ContainerCreating']);
  });
});

describe("the agent's answer", () => {
  test('status runs `nsdebug-agent info` with the contract version, as JSON', () => {
    expect(statusArgv()).toEqual(['nsdebug-agent', 'info', `--contract=${CONTRACT_VERSION}`, '--output=json']);
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
