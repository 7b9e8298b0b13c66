// install/uninstall against a fake API: what is applied, how the wait judges agent pods, and the
// one-line failures a user sees (image pull, crash loop, timeout, someone else's namespace).
import { Writable } from 'node:stream';

import { failureOf } from '../../../src/cli/failure.js';
import { runInstall } from '../../../src/cli/install.js';
import type { CliIo } from '../../../src/cli/io.js';
import { ExitCode } from '../../../src/contract.js';
import { NsdebugError } from '../../../src/errors.js';
import { agentPodState, currentPods } from '../../../src/agent-health.js';
import type { KubeConnection } from '../../../src/kube/config.js';
import { install, installApiFailure as apiFailure, type InstallClient, type InstallIO } from '../../../src/kube/install.js';
import { kustomizeBuild, type KubeObject } from '../../../src/kube/kustomize.js';
import { deployDir } from '../../../src/kube/manifests.js';
import { rolloutState, summarizeAgents, type DaemonSetLike } from '../../../src/kube/rollout.js';
import { uninstall } from '../../../src/kube/uninstall.js';
import type { PodLike } from '../../../src/pod.js';

type Status = NonNullable<PodLike['status']>;
type ContainerStatus = NonNullable<Status['containerStatuses']>[number];

function pod(node: string, agent: Partial<ContainerStatus> = {}, extra: Partial<Status> = {}, name = `nsdebug-agent-${node}`): PodLike {
  const ready = agent.ready ?? false;
  return {
    metadata: { name, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { nodeName: node },
    status: {
      phase: ready ? 'Running' : 'Pending',
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      containerStatuses: [{ name: 'agent', ready, ...agent }],
      ...extra,
    },
  };
}
const readyPod = (node: string) => pod(node, { ready: true, state: { running: {} } });
const waiting = (reason: string, message?: string) => ({ state: { waiting: { reason, ...(message ? { message } : {}) } } });

describe('agentPodState', () => {
  test('ready', () => expect(agentPodState(readyPod('n1'))).toEqual({ node: 'n1', pod: 'nsdebug-agent-n1', ready: true, state: 'ready' }));

  test('an image pull failure is final and names the pull error from the events', () => {
    const events = [
      'Readiness probe failed: x',
      'Failed to pull image "nsdebug.local/agent:missing": rpc error: code = NotFound desc = not found',
      'Error: ImagePullBackOff',
    ];
    const state = agentPodState(pod('n1', waiting('ImagePullBackOff', 'Back-off pulling image "nsdebug.local/agent:missing"')), events);
    expect(state.failure).toBe(
      'ImagePullBackOff: Failed to pull image "nsdebug.local/agent:missing": rpc error: code = NotFound desc = not found',
    );
  });

  test('without events the back-off message is used', () => {
    expect(
      agentPodState(pod('n1', waiting('ErrImageNeverPull', 'Container image "x" is not present with pull policy of Never'))).failure,
    ).toBe('ErrImageNeverPull: Container image "x" is not present with pull policy of Never');
  });

  test('ErrImagePull alone is shown but waited on (it turns into ImagePullBackOff or succeeds)', () => {
    const state = agentPodState(pod('n1', waiting('ErrImagePull', 'rpc error')));
    expect(state).toMatchObject({ ready: false, state: 'ErrImagePull: rpc error' });
    expect(state.failure).toBeUndefined();
  });

  test('a crash loop is final and says how the agent exited', () => {
    const state = agentPodState(
      pod('n1', {
        ...waiting('CrashLoopBackOff', 'back-off 10s'),
        lastState: { terminated: { exitCode: 72, reason: 'Error', message: 'cannot load\nlibnsdebug.so' } },
      }),
    );
    expect(state.failure).toBe('CrashLoopBackOff: the agent exited 72 (Error): cannot load libnsdebug.so');
  });

  test("running but not ready shows the readiness probe's own words", () => {
    const state = agentPodState(pod('n1', { state: { running: {} } }), [
      'Readiness probe failed: session cleanup: cannot create a session cgroup',
    ]);
    expect(state).toMatchObject({
      ready: false,
      state: 'running, not ready: Readiness probe failed: session cleanup: cannot create a session cgroup',
    });
    expect(state.failure).toBeUndefined();
  });

  test('unschedulable, creating, terminating', () => {
    expect(
      agentPodState(
        pod(
          'n1',
          {},
          { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes: insufficient memory' }] },
        ),
      ).state,
    ).toBe('unschedulable: 0/1 nodes: insufficient memory');
    expect(agentPodState(pod('n1', waiting('ContainerCreating'))).state).toBe('ContainerCreating');
    const gone = pod('n1', { ready: true });
    gone.metadata!.deletionTimestamp = '2026-01-01T00:01:00Z';
    expect(agentPodState(gone).state).toBe('terminating');
  });

  test("a pod not yet bound names its node from the DaemonSet's affinity", () => {
    const p = pod('', waiting('ContainerCreating'));
    p.spec = {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', values: ['n7'] }] }],
          },
        },
      },
    };
    expect(agentPodState(p).node).toBe('n7');
  });
});

describe('rolloutState', () => {
  const ds = (desired: number, updated: number, available: number, generation = 2, observed = 2): DaemonSetLike => ({
    metadata: { generation },
    status: { observedGeneration: observed, desiredNumberScheduled: desired, updatedNumberScheduled: updated, numberAvailable: available },
  });

  test('done when the controller saw this generation and every node is updated and available', () => {
    expect(rolloutState(ds(2, 2, 2), [agentPodState(readyPod('a')), agentPodState(readyPod('b'))]).done).toBe(true);
    expect(rolloutState(ds(2, 2, 2, 3, 2), [agentPodState(readyPod('a'))]).done).toBe(false);
    expect(rolloutState(ds(2, 1, 2), []).done).toBe(false);
    expect(rolloutState(undefined, []).done).toBe(false);
  });

  test('the first stuck node becomes the failure line', () => {
    const state = rolloutState(ds(2, 2, 1), [
      agentPodState(readyPod('a')),
      agentPodState(pod('b', waiting('InvalidImageName', 'bad ref'))),
    ]);
    expect(state.failure).toBe('agent on node b (pod nsdebug-agent-b) cannot start: InvalidImageName: bad ref');
  });

  test('per node, the newest pod that is not being deleted counts', () => {
    const old = readyPod('a');
    old.metadata!.deletionTimestamp = '2026-01-01T00:05:00Z';
    const fresh = pod('a', waiting('ContainerCreating'), {}, 'nsdebug-agent-new');
    fresh.metadata!.creationTimestamp = '2026-01-01T00:04:00Z';
    expect(currentPods([old, fresh, readyPod('b')]).map((p) => p.metadata?.name)).toEqual(['nsdebug-agent-new', 'nsdebug-agent-b']);
  });
});

/** A fake API server: objects by key, and a scripted DaemonSet/pod timeline per poll. */
class FakeCluster implements InstallClient {
  stored = new Map<string, KubeObject>();
  applied: Array<{ ref: string; dryRun: boolean }> = [];
  deleted: string[] = [];
  polls = 0;
  /** the wait's API calls, in order: a poll starts with readDaemonSet */
  calls: string[] = [];
  constructor(
    private timeline: Array<{ ds: DaemonSetLike; pods: PodLike[] }> = [],
    public warnings: Record<string, string[]> = {},
    /** deletions finish only after this many reads of a deleted object */
    private deleteLag = 0,
  ) {}
  private key = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  private lag = new Map<string, number>();
  async apply(o: KubeObject, dryRun: boolean) {
    this.applied.push({ ref: this.key(o), dryRun });
    if (!dryRun) this.stored.set(this.key(o), structuredClone(o));
  }
  async get(o: KubeObject) {
    const k = this.key(o);
    const left = this.lag.get(k);
    if (left !== undefined) {
      if (left <= 0) {
        this.lag.delete(k);
        this.stored.delete(k);
      } else this.lag.set(k, left - 1);
    }
    return this.stored.get(k);
  }
  async remove(o: KubeObject) {
    const k = this.key(o);
    if (!this.stored.has(k) || this.lag.has(k)) return false;
    this.deleted.push(k);
    if (this.deleteLag) this.lag.set(k, this.deleteLag);
    else this.stored.delete(k);
    return true;
  }
  private now() {
    return this.timeline[Math.min(this.polls, this.timeline.length - 1)] ?? { ds: {}, pods: [] };
  }
  async readDaemonSet() {
    this.calls.push('readDaemonSet');
    return this.now().ds;
  }
  async listAgentPods() {
    this.calls.push('listAgentPods');
    const pods = this.now().pods;
    this.polls++;
    return pods;
  }
  async agentPodWarnings() {
    this.calls.push('agentPodWarnings');
    return new Map(Object.entries(this.warnings));
  }
  /** the calls of each poll */
  callsPerPoll(): string[][] {
    const polls: string[][] = [];
    for (const call of this.calls) {
      if (call === 'readDaemonSet') polls.push([]);
      polls.at(-1)?.push(call);
    }
    return polls;
  }
}

function io(tty = false): InstallIO & { lines: string[]; progressLines: string[]; clock: number } {
  const out = { lines: [] as string[], progressLines: [] as string[], clock: 0 };
  return Object.assign(out, {
    out: (l: string) => void out.lines.push(l),
    ...(tty ? { progress: (l: string) => void out.progressLines.push(l) } : {}),
    now: () => out.clock,
    sleep: async (ms: number) => void (out.clock += ms),
  });
}

async function failure(p: Promise<unknown>): Promise<NsdebugError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof NsdebugError) return err;
    throw err;
  }
  throw new Error('did not fail');
}

const status = (desired: number, ready: number) => ({
  metadata: { generation: 1 },
  status: { observedGeneration: 1, desiredNumberScheduled: desired, updatedNumberScheduled: desired, numberAvailable: ready },
});

describe('install', () => {
  let manifests: KubeObject[];
  beforeAll(async () => {
    manifests = await kustomizeBuild(deployDir());
  });

  test('applies every object, namespace first, then waits with per-node progress on a terminal', async () => {
    const cluster = new FakeCluster([
      { ds: status(2, 0), pods: [pod('n1', waiting('ContainerCreating')), pod('n2', waiting('ContainerCreating'))] },
      { ds: status(2, 1), pods: [readyPod('n1'), pod('n2', waiting('ContainerCreating'))] },
      { ds: status(2, 2), pods: [readyPod('n1'), readyPod('n2')] },
    ]);
    const out = io(true);
    const state = await install({ manifests }, cluster, out);
    expect(cluster.applied.map((a) => a.ref)).toEqual([
      'Namespace//nsdebug-system',
      'ResourceQuota/nsdebug-system/nsdebug-critical-pods',
      'ServiceAccount/nsdebug-system/nsdebug-agent',
      'ClusterRole//nsdebug-agent-namespaces',
      'ClusterRole//nsdebug-user',
      'ClusterRoleBinding//nsdebug-agent-namespaces',
      'Role/nsdebug-system/nsdebug-agent',
      'Role/nsdebug-system/nsdebug-user',
      'RoleBinding/nsdebug-system/nsdebug-agent',
      'DaemonSet/nsdebug-system/nsdebug-agent',
    ]);
    expect(out.lines[0]).toBe('namespace/nsdebug-system serverside-applied');
    expect(out.lines.at(-1)).toBe('nsdebug agent ready on 2/2 nodes (image nsdebug.local/agent:dev, namespace nsdebug-system)');
    expect(out.progressLines).toEqual([
      'n1: nsdebug-agent-n1 ContainerCreating',
      'n2: nsdebug-agent-n2 ContainerCreating',
      'n1: nsdebug-agent-n1 ready',
      'n2: nsdebug-agent-n2 ready',
    ]);
    expect(state?.done).toBe(true);
  });

  test('no progress lines when stderr is not a terminal', async () => {
    const out = io(false);
    await install({ manifests }, new FakeCluster([{ ds: status(1, 1), pods: [readyPod('n1')] }]), out);
    expect(out.progressLines).toEqual([]);
  });

  test('a missing image fails at once with the node and the pull error', async () => {
    const cluster = new FakeCluster(
      [
        { ds: status(1, 0), pods: [pod('n1', waiting('ContainerCreating'))] },
        { ds: status(1, 0), pods: [pod('n1', waiting('ImagePullBackOff', 'Back-off pulling image "nsdebug.local/agent:missing"'))] },
      ],
      {
        'nsdebug-agent-n1': [
          'Failed to pull image "nsdebug.local/agent:missing": failed to resolve reference: not found',
          'Error: ErrImagePull',
        ],
      },
    );
    const err = await failure(install({ manifests, image: 'nsdebug.local/agent:missing', timeoutMs: 60_000 }, cluster, io()));
    expect(err.exitCode).toBe(ExitCode.AGENT_UNAVAILABLE);
    expect(err.message).toBe(
      'agent on node n1 (pod nsdebug-agent-n1) cannot start: ImagePullBackOff: Failed to pull image "nsdebug.local/agent:missing": failed to resolve reference: not found; make the image available to the node (push it, or import it into the node\'s runtime) or pass --image',
    );
    expect(err.message).not.toContain('\n');
  });

  test("a pod of an earlier install that could not pull its image is not this install's failure", async () => {
    const old = pod('n1', waiting('ImagePullBackOff', 'Back-off pulling image "nsdebug.local/agent:missing"'));
    old.spec!.containers = [{ name: 'agent', image: 'nsdebug.local/agent:missing' }];
    const fresh = readyPod('n1');
    fresh.spec!.containers = [{ name: 'agent', image: 'nsdebug.local/agent:dev' }];
    const cluster = new FakeCluster([
      // the controller has not seen the new generation yet, then replaces the pod
      {
        ds: {
          metadata: { generation: 2 },
          status: { observedGeneration: 1, desiredNumberScheduled: 1, updatedNumberScheduled: 1, numberAvailable: 0 },
        },
        pods: [old],
      },
      {
        ds: {
          metadata: { generation: 2 },
          status: { observedGeneration: 2, desiredNumberScheduled: 1, updatedNumberScheduled: 0, numberAvailable: 0 },
        },
        pods: [old],
      },
      {
        ds: {
          metadata: { generation: 2 },
          status: { observedGeneration: 2, desiredNumberScheduled: 1, updatedNumberScheduled: 1, numberAvailable: 1 },
        },
        pods: [fresh],
      },
    ]);
    const out = io(true);
    await install({ manifests }, cluster, out);
    expect(out.progressLines).toEqual([
      'n1: nsdebug-agent-n1 being replaced (it runs nsdebug.local/agent:missing)',
      'n1: nsdebug-agent-n1 ready',
    ]);
  });

  test('a timeout with no agent ready names what each node is waiting for', async () => {
    const cluster = new FakeCluster(
      [{ ds: status(2, 0), pods: [pod('n1', waiting('ContainerCreating')), pod('n2', { state: { running: {} } })] }],
      {
        'nsdebug-agent-n2': ['Readiness probe failed: toolbox: no static busybox'],
      },
    );
    const out = io();
    const err = await failure(install({ manifests, timeoutMs: 5000 }, cluster, out));
    expect(err.exitCode).toBe(ExitCode.AGENT_UNAVAILABLE);
    expect(err.message).toBe(
      'the agent is not ready on 2 of 2 node(s) after 5s: n1: ContainerCreating; n2: running, not ready: Readiness probe failed: toolbox: no static busybox; see `kubectl -n nsdebug-system describe daemonset nsdebug-agent` or wait longer with --timeout',
    );
    expect(out.clock).toBe(5000);
  });

  test('a timeout with some agents ready is DEGRADED, naming what the others wait for', async () => {
    const cluster = new FakeCluster([{ ds: status(2, 1), pods: [readyPod('n1'), pod('n2', { state: { running: {} } })] }], {
      'nsdebug-agent-n2': ['Readiness probe failed: toolbox: no static busybox'],
    });
    const out = io();
    const err = await failure(install({ manifests, timeoutMs: 5000 }, cluster, out));
    expect(err.exitCode).toBe(ExitCode.DEGRADED);
    expect(err.message).toBe(
      'the agent is ready on 1 of 2 node(s) after 5s; not ready: 1 running, not ready: Readiness probe failed: toolbox: no static busybox (nodes n2); sessions to the ready nodes work; see `kubectl nsdebug status`',
    );
    // what was applied is on stdout before the error
    expect(out.lines.at(-1)).toBe('daemonset.apps/nsdebug-agent serverside-applied');
  });

  test('--dry-run on a fresh cluster checks the namespace and cluster objects, and says what it could not', async () => {
    const cluster = new FakeCluster();
    const out = io();
    await install({ manifests, dryRun: true }, cluster, out);
    expect(cluster.applied).toEqual([
      { ref: 'Namespace//nsdebug-system', dryRun: true },
      { ref: 'ClusterRole//nsdebug-agent-namespaces', dryRun: true },
      { ref: 'ClusterRole//nsdebug-user', dryRun: true },
      { ref: 'ClusterRoleBinding//nsdebug-agent-namespaces', dryRun: true },
    ]);
    expect(out.lines).toContain(
      'daemonset.apps/nsdebug-agent not checked: the server can dry-run it only once namespace nsdebug-system exists',
    );
  });

  test('--dry-run asks the server to dry-run every object and does not wait', async () => {
    const cluster = new FakeCluster();
    cluster.stored.set('Namespace//nsdebug-system', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'nsdebug-system', labels: { 'app.kubernetes.io/part-of': 'nsdebug' } },
    });
    const out = io();
    expect(await install({ manifests, dryRun: true }, cluster, out)).toBeUndefined();
    expect(cluster.applied.every((a) => a.dryRun)).toBe(true);
    expect(cluster.polls).toBe(0);
    expect(out.lines.at(-1)).toBe('daemonset.apps/nsdebug-agent serverside-applied (server dry run)');
  });

  test('--no-wait applies and says how to follow', async () => {
    const out = io();
    await install({ manifests, wait: false }, new FakeCluster(), out);
    expect(out.lines.at(-1)).toMatch(/^not waiting for the agent: run `kubectl nsdebug status`/);
  });

  test('refuses a namespace nsdebug did not create, before changing anything', async () => {
    const cluster = new FakeCluster();
    cluster.stored.set('Namespace//kube-system', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system' } });
    const err = await failure(install({ manifests, namespace: 'kube-system' }, cluster, io()));
    expect(err.message).toBe(
      "namespace kube-system exists and was not created by nsdebug; pick another --namespace (the agent's namespace must allow privileged pods)",
    );
    expect(cluster.applied).toEqual([]);
  });

  test('--namespace and --image reach the applied objects', async () => {
    const cluster = new FakeCluster([{ ds: status(1, 1), pods: [readyPod('n1')] }]);
    const out = io();
    await install({ manifests, namespace: 'dbg', image: 'r.example/agent:1' }, cluster, out);
    expect([...cluster.stored.keys()]).toContain('DaemonSet/dbg/nsdebug-agent');
    expect(out.lines.at(-1)).toBe('nsdebug agent ready on 1/1 node (image r.example/agent:1, namespace dbg)');
  });
});

describe('summarizeAgents', () => {
  const state = (node: string, s: string) => ({ node, pod: `nsdebug-agent-${node}`, ready: s === 'ready', state: s });

  test('counts by state, largest first, at most 4 then "N other"; names at most 5 nodes in name order', () => {
    const states = ['A', 'A', 'A', 'B', 'B', 'C', 'C', 'D', 'E', 'F'];
    const nodes = [...states.map((s, i) => state(`n${20 - i}`, s)), ...Array.from({ length: 10 }, (_, i) => state(`r${i}`, 'ready'))];
    expect(summarizeAgents(nodes)).toEqual({
      total: 20,
      ready: 10,
      states: '3 A; 2 B; 2 C; 1 D; 2 other',
      nodes: 'n11, n12, n13, n14, n15 and 5 more',
    });
    expect(summarizeAgents(nodes, 2).nodes).toBe('n11, n12 and 8 more');
  });

  test('all ready: nothing to name', () => {
    expect(summarizeAgents([state('a', 'ready')])).toEqual({ total: 1, ready: 1, states: '', nodes: '' });
  });
});

describe('a rollout on 1000 nodes', () => {
  let manifests: KubeObject[];
  beforeAll(async () => {
    manifests = await kustomizeBuild(deployDir());
  });
  const node = (i: number) => `kwok-node-${i}`;
  /** agent pods on nodes 0..count-1, each as `of` says */
  const fleet = (of: (i: number) => PodLike, count = 1000) => Array.from({ length: count }, (_, i) => of(i));
  const creating = (i: number) => pod(node(i), waiting('ContainerCreating'));
  const probe = { state: { running: {} } };

  test('progress is one line of counts, printed only when the counts change', async () => {
    const half = (i: number) => (i < 512 ? readyPod(node(i)) : creating(i));
    const cluster = new FakeCluster([
      { ds: status(1000, 0), pods: [] },
      { ds: status(1000, 0), pods: fleet(creating) },
      { ds: status(1000, 0), pods: fleet(creating) },
      { ds: status(1000, 512), pods: fleet(half) },
      { ds: status(1000, 512), pods: fleet(half) },
      { ds: status(1000, 512), pods: fleet(half) },
      { ds: status(1000, 1000), pods: fleet((i) => readyPod(node(i))) },
    ]);
    const out = io(true);
    const state = await install({ manifests }, cluster, out);
    expect(state?.done).toBe(true);
    expect(cluster.polls).toBe(7);
    expect(out.progressLines).toEqual([
      'agents ready on 0 of 1000 nodes (1000 node(s) without an agent pod yet)',
      'agents ready on 0 of 1000 nodes (1000 ContainerCreating)',
      'agents ready on 512 of 1000 nodes (488 ContainerCreating)',
      'agents ready on 1000 of 1000 nodes',
    ]);
    expect(out.lines.at(-1)).toBe('nsdebug agent ready on 1000/1000 nodes (image nsdebug.local/agent:dev, namespace nsdebug-system)');
  });

  test('each poll is at most three API calls, and the events are read only while an agent is not ready', async () => {
    const cluster = new FakeCluster([
      { ds: status(1000, 0), pods: fleet(creating) },
      { ds: status(1000, 600), pods: fleet((i) => (i < 600 ? readyPod(node(i)) : creating(i))) },
      { ds: status(1000, 1000), pods: fleet((i) => readyPod(node(i))) },
    ]);
    await install({ manifests }, cluster, io(true));
    const events = ['readDaemonSet', 'listAgentPods', 'agentPodWarnings'];
    expect(cluster.callsPerPoll()).toEqual([events, events, ['readDaemonSet', 'listAgentPods']]);
  });

  test('a timeout with most agents ready is DEGRADED: one line, counts by state, at most 5 nodes named', async () => {
    const stuck: Record<number, PodLike> = {
      7: pod(node(7), probe),
      9: pod(node(9), probe),
      11: pod(node(11), probe),
      12: creating(12),
      40: creating(40),
    };
    const cluster = new FakeCluster(
      [
        { ds: status(1000, 0), pods: fleet(creating) },
        { ds: status(1000, 995), pods: fleet((i) => stuck[i] ?? readyPod(node(i))) },
      ],
      Object.fromEntries([7, 9, 11].map((i) => [`nsdebug-agent-${node(i)}`, ['Readiness probe failed: toolbox: no static busybox']])),
    );
    const out = io(true);
    const err = await failure(install({ manifests, timeoutMs: 120_000 }, cluster, out));
    expect(err.exitCode).toBe(ExitCode.DEGRADED);
    expect(err.message).toBe(
      'the agent is ready on 995 of 1000 node(s) after 2m; not ready: 3 running, not ready: Readiness probe failed: toolbox: no static busybox; 2 ContainerCreating (nodes kwok-node-7, kwok-node-9, kwok-node-11, kwok-node-12, kwok-node-40); sessions to the ready nodes work; see `kubectl nsdebug status`',
    );
    expect(out.clock).toBe(120_000);
    expect(cluster.polls).toBe(121);
    expect(Math.max(...cluster.callsPerPoll().map((calls) => calls.length))).toBe(3);
    expect(out.progressLines).toEqual([
      'agents ready on 0 of 1000 nodes (1000 ContainerCreating)',
      'agents ready on 995 of 1000 nodes (3 running, not ready: Readiness probe failed: toolbox: no static busybox; 2 ContainerCreating)',
    ]);
  });

  test('a degraded timeout names at most 5 nodes, then how many more', async () => {
    const cluster = new FakeCluster([
      { ds: status(1000, 990), pods: fleet((i) => (i % 100 === 0 ? creating(i) : readyPod(node(i))), 998) },
    ]);
    const err = await failure(install({ manifests, timeoutMs: 3000 }, cluster, io()));
    expect([err.exitCode, err.message]).toEqual([
      ExitCode.DEGRADED,
      'the agent is ready on 988 of 1000 node(s) after 3s; not ready: 10 ContainerCreating (nodes kwok-node-0, kwok-node-100, kwok-node-200, kwok-node-300, kwok-node-400 and 5 more); 2 node(s) without an agent pod yet; sessions to the ready nodes work; see `kubectl nsdebug status`',
    ]);
  });

  test('a timeout with no agent ready stays AGENT_UNAVAILABLE, naming at most 5 nodes', async () => {
    const cluster = new FakeCluster([{ ds: status(1000, 0), pods: fleet(creating, 998) }]);
    const err = await failure(install({ manifests, timeoutMs: 5000 }, cluster, io()));
    expect(err.exitCode).toBe(ExitCode.AGENT_UNAVAILABLE);
    expect(err.message).toBe(
      'the agent is not ready on 1000 of 1000 node(s) after 5s: kwok-node-0: ContainerCreating; kwok-node-1: ContainerCreating; kwok-node-2: ContainerCreating; kwok-node-3: ContainerCreating; kwok-node-4: ContainerCreating; and 993 more; 2 node(s) without an agent pod yet; see `kubectl -n nsdebug-system describe daemonset nsdebug-agent` or wait longer with --timeout',
    );
  });

  test('one agent that cannot start still fails at once', async () => {
    const cluster = new FakeCluster([
      { ds: status(1000, 999), pods: fleet((i) => (i === 500 ? pod(node(i), waiting('InvalidImageName', 'bad ref')) : readyPod(node(i)))) },
    ]);
    const out = io();
    const err = await failure(install({ manifests, timeoutMs: 120_000 }, cluster, out));
    expect([err.exitCode, err.message]).toEqual([
      ExitCode.AGENT_UNAVAILABLE,
      "agent on node kwok-node-500 (pod nsdebug-agent-kwok-node-500) cannot start: InvalidImageName: bad ref; make the image available to the node (push it, or import it into the node's runtime) or pass --image",
    ]);
    expect(out.clock).toBe(0);
  });
});

describe('kubectl nsdebug install, degraded', () => {
  test('prints what it applied, then one error line, and exits 76', async () => {
    const cluster = new FakeCluster([{ ds: status(2, 1), pods: [readyPod('n1'), pod('n2', waiting('ContainerCreating'))] }]);
    const stdout: string[] = [];
    const stderr: string[] = [];
    const sink = (to: string[]) => new Writable({ write: (chunk: Buffer, _enc, done) => void (to.push(chunk.toString()), done()) });
    const cliIo = { stdout: sink(stdout), stderr: sink(stderr), facts: { stdinIsTTY: false, stderrIsTTY: false } } as unknown as CliIo;
    let thrown: unknown;
    try {
      await runInstall({ timeout: '100ms' }, cliIo, {
        loadKubeConfig: async () => ({}) as KubeConnection,
        installClient: async () => cluster,
      });
    } catch (err) {
      thrown = err;
    }
    expect(failureOf(thrown)).toEqual({
      line: 'error: the agent is ready on 1 of 2 node(s) after 0.1s; not ready: 1 ContainerCreating (nodes n2); sessions to the ready nodes work; see `kubectl nsdebug status`',
      exitCode: 76,
    });
    expect(stdout.join('').split('\n').at(-2)).toBe('daemonset.apps/nsdebug-agent serverside-applied');
    expect(stderr).toEqual([]);
  });
});

describe('uninstall', () => {
  let manifests: KubeObject[];
  beforeAll(async () => {
    manifests = await kustomizeBuild(deployDir());
  });

  test('deletes what install created, DaemonSet first, namespace last, and waits until gone', async () => {
    const cluster = new FakeCluster([{ ds: status(1, 1), pods: [readyPod('n1')] }], {}, 2);
    await install({ manifests }, cluster, io());
    const out = io(true);
    expect(await uninstall({ manifests }, cluster, out)).toBe(10);
    expect(cluster.deleted[0]).toBe('DaemonSet/nsdebug-system/nsdebug-agent');
    expect(cluster.deleted.at(-1)).toBe('Namespace//nsdebug-system');
    expect(cluster.stored.size).toBe(0);
    expect(out.lines).toContain('daemonset.apps/nsdebug-agent deleted');
    // progress only when what is left changes, not once per poll
    expect(new Set(out.progressLines).size).toBe(out.progressLines.length);
    expect(out.progressLines[0]).toMatch(/^waiting for daemonset\.apps\/nsdebug-agent, .* to be deleted$/);
  });

  test('is idempotent', async () => {
    const out = io();
    expect(await uninstall({ manifests }, new FakeCluster(), out)).toBe(0);
    expect(out.lines).toEqual(['nsdebug is not installed: nothing to remove']);
  });

  test("keeps an object that is not labelled as nsdebug's", async () => {
    const cluster = new FakeCluster();
    cluster.stored.set('Namespace//nsdebug-system', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'nsdebug-system' } });
    const out = io();
    await uninstall({ manifests }, cluster, out);
    expect(cluster.deleted).toEqual([]);
    expect(out.lines[0]).toBe(
      'namespace/nsdebug-system kept: it is not labelled app.kubernetes.io/part-of=nsdebug, so nsdebug did not create it',
    );
  });
});

describe('apiFailure', () => {
  const api = (code: number, body: unknown) => Object.assign(new Error(`HTTP-Code: ${code}`), { code, body });
  const where = { server: 'https://k:6443', context: 'kind', requestTimeoutMs: 30_000 };
  test('a refusal says installing needs cluster-admin', () => {
    const err = apiFailure(
      api(
        403,
        JSON.stringify({
          kind: 'Status',
          message: 'clusterroles.rbac.authorization.k8s.io is forbidden: User "dev" cannot create resource',
        }),
      ),
      'apply x',
      where,
    );
    expect([err.exitCode, err.message]).toEqual([
      ExitCode.FORBIDDEN,
      'cannot apply x: forbidden: clusterroles.rbac.authorization.k8s.io is forbidden: User "dev" cannot create resource; installing or removing nsdebug needs cluster-admin rights',
    ]);
  });
  test("anything else is config.ts's sentence: unreachable, credentials", () => {
    const refused = apiFailure(
      Object.assign(new Error('request to https://k:6443/api failed, reason: connect ECONNREFUSED 127.0.0.1:6443'), {
        code: 'ECONNREFUSED',
      }),
      'apply x',
      where,
    );
    expect(refused.exitCode).toBe(ExitCode.API_UNREACHABLE);
    expect(refused.message).toMatch(/^cannot reach the API server at https:\/\/k:6443 \(ECONNREFUSED\)/);
    expect(apiFailure(api(401, ''), 'apply x', where).exitCode).toBe(ExitCode.FORBIDDEN);
  });
});
