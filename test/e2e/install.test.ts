// The agent's install on the real cluster (test/cluster: every node), through kubectl's plugin
// lookup: install from the locally built image → the agent Ready → status with matching
// versions; an audited session; uninstall leaves nothing; a missing image is reported with
// its node and reason; `kubectl apply --dry-run=server -k deploy/` is accepted.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { CONTRACT_VERSION } from '../../src/contract.js';
import { clusterEnv, kubectl as kubectlRaw, kubectlJson as json, type PodJson, AGENT_IMAGE as IMAGE } from './helpers/kube.js';
import { HOST_NODE, targetNode } from './helpers/node.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const NS = 'nsdebug-system';
// a demo workload of test/cluster on this run's node type: busybox running `sleep infinity`
const TARGET = { namespace: targetNode().namespace, pod: 'busybox', container: 'busybox' };
// what each node type reports: this host's legacy node, the VM nodes (test/cluster/node)
const cgroupOf = (name: string) => (name === HOST_NODE ? 'hybrid/cgroupfs' : 'v2/systemd');

// install and uninstall wait for the cluster: give kubectl room beyond their own --timeout
const kubectl = (args: string[], opts: Parameters<typeof kubectlRaw>[1] = {}) => kubectlRaw(args, { timeout: 300_000, ...opts });
/** through kubectl's plugin lookup: run.sh puts the repo's bin/ (kubectl-nsdebug) first on PATH */
const nsdebug = (...args: string[]) => kubectl(['nsdebug', ...args]);

/** Every kind install creates, listed by label and name: nothing may be left after uninstall. */
async function leftovers(): Promise<string[]> {
  const found: string[] = [];
  for (const [kind, namespaced] of [
    ['namespace', false],
    ['clusterrole', false],
    ['clusterrolebinding', false],
    ['daemonset', true],
    ['serviceaccount', true],
    ['role', true],
    ['rolebinding', true],
    ['resourcequota', true],
    ['pod', true],
  ] as const) {
    const r = await kubectl(['get', kind, ...(namespaced ? ['-A'] : []), '-l', 'app.kubernetes.io/part-of=nsdebug', '-o', 'name']);
    found.push(...String(r.stdout).split('\n').filter(Boolean));
  }
  for (const name of ['namespace/nsdebug-system', 'clusterrole/nsdebug-user']) {
    const r = await kubectl(['get', name, '-o', 'name']);
    if (r.exitCode === 0) found.push(name);
  }
  return [...new Set(found)];
}

beforeAll(async () => {
  clusterEnv();
  await nsdebug('uninstall', '--timeout', '3m');
}, 300_000);

// the other e2e suites need the agent: leave it installed, as run.sh found it
afterAll(async () => {
  await nsdebug('install', '--image', IMAGE, '--timeout', '3m');
}, 300_000);

describe('kubectl nsdebug install | status | uninstall on a real cluster', () => {
  let nodes: string[];

  test('install from the locally built image: the agent becomes Ready on every node', async () => {
    nodes = (await json<{ items: Array<{ metadata: { name: string } }> }>(['get', 'nodes'])).items.map((n) => n.metadata.name).sort();
    expect(nodes).toContain(HOST_NODE);
    const r = await nsdebug('install', '--image', IMAGE, '--timeout', '5m');
    expect([r.exitCode, String(r.stderr)]).toEqual([0, '']);
    expect(String(r.stdout).split('\n')).toContain(`daemonset.apps/nsdebug-agent serverside-applied`);
    const n = nodes.length;
    expect(String(r.stdout)).toMatch(
      new RegExp(`nsdebug agent ready on ${n}/${n} nodes? \\(image ${IMAGE.replace(/[.]/g, '\\.')}, namespace ${NS}\\)`),
    );
    const ds = await json<{ status: { numberReady: number; desiredNumberScheduled: number } }>([
      '-n',
      NS,
      'get',
      'daemonset',
      'nsdebug-agent',
    ]);
    expect(ds.status.desiredNumberScheduled).toBeGreaterThan(0);
    expect(ds.status.numberReady).toBe(ds.status.desiredNumberScheduled);
    expect(ds.status.desiredNumberScheduled).toBe(nodes.length);
  }, 400_000);

  test('`kubectl apply --dry-run=server -k deploy/` is accepted by the API server (PodSecurity included)', async () => {
    const r = await kubectl(['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-k', join(ROOT, 'deploy')]);
    expect([r.exitCode, String(r.stderr)]).toEqual([0, '']);
    expect(String(r.stdout)).toContain('daemonset.apps/nsdebug-agent serverside-applied (server dry run)');
  });

  test("status: every node, its ready agent, runtime and cgroups, versions matching the CLI's", async () => {
    const r = await nsdebug('status', '-o', 'json');
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(String(r.stdout)) as {
      cli: { version: string; contractVersion: number };
      nodes: Array<{
        node: string;
        pod: string;
        ready: boolean;
        version: string;
        contractVersion: number;
        runtime: string;
        cgroup: string;
        problems: string[];
      }>;
    };
    expect(report.cli).toEqual({ version: VERSION, contractVersion: CONTRACT_VERSION });
    expect(report.nodes.map((n) => n.node).sort()).toEqual(nodes);
    for (const node of nodes)
      expect(report.nodes.find((n) => n.node === node)).toMatchObject({
        ready: true,
        version: VERSION,
        contractVersion: CONTRACT_VERSION,
        runtime: 'containerd',
        cgroup: cgroupOf(node),
        problems: [],
      });
    const summary = await nsdebug('status');
    expect(summary.exitCode).toBe(0);
    expect(String(summary.stdout).split('\n').slice(0, 2)).toEqual([
      `nodes: ${nodes.length}; ready to host a session: ${nodes.length}`,
      `agent versions: ${VERSION} (contract ${CONTRACT_VERSION}) on ${nodes.length}; this CLI: ${VERSION} (contract ${CONTRACT_VERSION})`,
    ]);
    // what the agents published of themselves, as kubectl sees it: a Lease per agent pod, owned by it
    const reports = await json<{ items: Array<{ metadata: { name: string; ownerReferences: Array<{ kind: string; name: string }> } }> }>([
      '-n',
      NS,
      'get',
      'leases',
      '-l',
      'nsdebug.io/agent-report=true',
    ]);
    expect(reports.items.map((l) => l.metadata.ownerReferences[0]?.name).sort()).toEqual(report.nodes.map((n) => n.pod).sort());
    const table = await nsdebug('status', '-o', 'wide');
    expect(table.exitCode).toBe(0);
    const [header, ...rows] = String(table.stdout).split('\n');
    expect(header).toMatch(/^NODE\s+AGENT POD\s+READY\s+VERSION\s+CONTRACT\s+RUNTIME\s+CGROUP\s+KERNEL$/);
    for (const node of nodes) {
      expect(rows).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^${node}\\s+nsdebug-agent-\\w+\\s+yes\\s+${VERSION.replace(/\./g, '\\.')}\\s+${CONTRACT_VERSION}\\s+containerd\\s+${cgroupOf(node)}\\s`,
          ),
        ),
      );
    }
  }, 120_000);

  test('a session run by exec into the agent pod leaves one audit line in the agent log', async () => {
    const target = await json<PodJson>(['-n', TARGET.namespace, 'get', 'pod', TARGET.pod]);
    const containerId =
      (target.status.containerStatuses ?? []).find((c) => c.name === TARGET.container)?.containerID?.replace(/^\w+:\/\//, '') ?? '';
    expect(containerId).toMatch(/^[0-9a-f]{64}$/);
    const agentPod = String(
      (
        await kubectl([
          '-n',
          NS,
          'get',
          'pods',
          '-l',
          'app.kubernetes.io/name=nsdebug-agent',
          '--field-selector',
          `spec.nodeName=${target.spec.nodeName}`,
          '-o',
          'jsonpath={.items[0].metadata.name}',
        ])
      ).stdout,
    );

    const pod = `${TARGET.namespace}/${TARGET.pod}`;
    const argv = [
      'enter',
      `--contract=${CONTRACT_VERSION}`,
      `--container-id=${containerId}`,
      `--pod-uid=${target.metadata.uid}`,
      `--pod=${pod}`,
      `--container=${TARGET.container}`,
      '--',
      'cat',
      '/proc/1/cmdline',
    ];
    const session = await kubectl(['-n', NS, 'exec', agentPod, '-c', 'agent', '--', 'nsdebug-agent', ...argv]);
    expect([session.exitCode, String(session.stdout).split('\0').filter(Boolean), String(session.stderr)]).toEqual([
      0,
      ['sleep', 'infinity'],
      '',
    ]);

    let line: Record<string, unknown> | undefined;
    for (let i = 0; i < 40 && !line; i++) {
      const logs = String((await kubectl(['-n', NS, 'logs', agentPod, '-c', 'agent'])).stdout).split('\n');
      line = logs
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.msg === 'session' && l.containerId === containerId);
      if (!line) await new Promise((r) => setTimeout(r, 250));
    }
    expect(line).toMatchObject({
      level: 'info',
      pod,
      container: TARGET.container,
      podUid: target.metadata.uid,
      command: ['cat', '/proc/1/cmdline'],
      exitCode: 0,
    });
    expect(line?.namespaces).toEqual(expect.arrayContaining(['pid', 'mnt']));
    for (const field of ['start', 'end']) expect(typeof line?.[field]).toBe('string');
    expect(typeof line?.durationMs).toBe('number');
  }, 120_000);

  test('uninstall removes every object install created, and is idempotent', async () => {
    const r = await nsdebug('uninstall', '--timeout', '3m');
    expect([r.exitCode, String(r.stderr)]).toEqual([0, '']);
    expect(String(r.stdout)).toContain('namespace/nsdebug-system deleted');
    expect(await leftovers()).toEqual([]);
    const again = await nsdebug('uninstall');
    expect([again.exitCode, String(again.stdout).trim()]).toEqual([0, 'nsdebug is not installed: nothing to remove']);
  }, 300_000);

  test('install with an image the node does not have reports ImagePullBackOff with the node and reason', async () => {
    const r = await nsdebug('install', '--image', 'nsdebug.local/agent:missing', '--timeout', '3m');
    expect(r.exitCode).toBe(67);
    const lines = String(r.stderr).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^error: agent on node (${nodes.join('|')}) \\(pod nsdebug-agent-\\w+\\) cannot start: (ImagePullBackOff|ErrImageNeverPull): .*nsdebug\\.local/agent:missing.*; make the image available to the node`,
      ),
    );
    await nsdebug('uninstall', '--timeout', '3m');
    expect(await leftovers()).toEqual([]);
  }, 400_000);
});
