// Target parsing, label selectors, the node check and resolution over a fake API (the pod and
// container rules it applies: ../pod.test.ts).
import { ExitCode } from '../../../src/contract.js';
import { NsdebugError } from '../../../src/errors.js';
import { resolveTarget } from '../../../src/kube/target.js';
import { checkNode, parseTarget, selectorString } from '../../../src/pod.js';
import { FakeTargetClient, ID, UID, fakePod, running, thrownBy } from './fakes.js';

async function asyncFailure(f: () => Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await f();
  } catch (err) {
    if (err instanceof NsdebugError) return { code: err.exitCode, message: err.message };
    throw err;
  }
  throw new Error('no error');
}

describe('parseTarget', () => {
  test.each([
    ['web-0', { kind: 'pod', name: 'web-0' }],
    ['pod/web-0', { kind: 'pod', name: 'web-0' }],
    ['po/web-0', { kind: 'pod', name: 'web-0' }],
    ['pods/web-0', { kind: 'pod', name: 'web-0' }],
    ['deploy/web', { kind: 'deployment', name: 'web' }],
    ['deployment/web', { kind: 'deployment', name: 'web' }],
    ['deployments.apps/web', { kind: 'deployment', name: 'web' }],
    ['Deployment/web', { kind: 'deployment', name: 'web' }],
    ['sts/db', { kind: 'statefulset', name: 'db' }],
    ['statefulset/db', { kind: 'statefulset', name: 'db' }],
    ['ds/fluentd', { kind: 'daemonset', name: 'fluentd' }],
    ['daemonset/fluentd', { kind: 'daemonset', name: 'fluentd' }],
    ['rs/web-5d8f', { kind: 'replicaset', name: 'web-5d8f' }],
    ['replicaset/web-5d8f', { kind: 'replicaset', name: 'web-5d8f' }],
    ['job/migrate', { kind: 'job', name: 'migrate' }],
    ['jobs.batch/migrate', { kind: 'job', name: 'migrate' }],
    ['svc/web', { kind: 'service', name: 'web' }],
    ['web.v2-0', { kind: 'pod', name: 'web.v2-0' }],
  ])('%s', (text, ref) => expect(parseTarget(text)).toEqual(ref));

  test.each([
    ['cm/x', 'unknown target type "cm" in "cm/x"; use pod/, deploy/'],
    ['pod/', 'target "pod/" has no name; use TYPE/NAME'],
    ['', 'has no name'],
    ['Web_0', '"Web_0" is not a valid pod name'],
    ['deploy/a/b', '"a/b" is not a valid deployment name'],
    ['node/worker-1', 'node/worker-1 names a node: `kubectl nsdebug node/worker-1` opens a shell on it; here name a pod'],
    ['no/Worker', '"Worker" is not a valid node name'],
    [`pod/${'a'.repeat(254)}`, 'is not a valid pod name'],
  ])('%s is refused', (text, message) => {
    const f = thrownBy(() => parseTarget(text));
    expect(f.code).toBe(ExitCode.USAGE);
    expect(f.message).toContain(message);
  });
});

describe('selectorString', () => {
  test('matchLabels and every matchExpressions operator', () => {
    expect(
      selectorString({
        matchLabels: { app: 'web', tier: 'front' },
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod', 'stage'] },
          { key: 'canary', operator: 'NotIn', values: ['true'] },
          { key: 'team', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      }),
    ).toBe('app=web,tier=front,env in (prod,stage),canary notin (true),team,!legacy');
  });
  test('empty', () => expect(selectorString({})).toBe(''));
});

describe('checkNode', () => {
  test('a Windows pod or node is refused', () => {
    expect(thrownBy(() => checkNode(fakePod('w', { os: 'windows' })))).toEqual({
      code: ExitCode.AGENT_UNAVAILABLE,
      message: 'pod demo/w runs on Windows node node-1, which nsdebug does not support (Linux nodes only)',
    });
    expect(thrownBy(() => checkNode(fakePod('w'), { metadata: { labels: { 'kubernetes.io/os': 'windows' } } })).code).toBe(
      ExitCode.AGENT_UNAVAILABLE,
    );
  });
  test('a node that is not Ready is refused with its reason', () => {
    const node = {
      status: {
        conditions: [{ type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' }],
      },
    };
    expect(thrownBy(() => checkNode(fakePod('p'), node))).toEqual({
      code: ExitCode.AGENT_UNAVAILABLE,
      message:
        'node node-1 is not Ready (NodeStatusUnknown: Kubelet stopped posting node status.); its agent cannot be reached until the node recovers',
    });
  });
  test('a Ready node, or none readable, passes', () => {
    expect(() => checkNode(fakePod('p'), { status: { conditions: [{ type: 'Ready', status: 'True' }] } })).not.toThrow();
    expect(() => checkNode(fakePod('p'))).not.toThrow();
  });
});

describe('resolveTarget', () => {
  const web1 = fakePod('web-1', { created: '2026-01-01T00:01:00Z' });
  const web2 = fakePod('web-2', { created: '2026-01-01T00:02:00Z' });
  const multi = fakePod('multi', {
    containers: ['sidecar', 'app'],
    annotations: { 'kubectl.kubernetes.io/default-container': 'app' },
    statuses: [running('sidecar', ID('b')), running('app', ID('c'))],
  });
  const client = () =>
    new FakeTargetClient(
      [web1, web2, multi],
      { 'deployment/demo/web': { matchLabels: { app: 'web' } }, 'job/demo/empty': {} },
      {},
      { 'app=web': ['web-1', 'web-2'] },
    );

  test('a pod: its UID, node and the container ID without the runtime prefix', async () => {
    const target = await resolveTarget({ kind: 'pod', name: 'multi' }, { namespace: 'demo' }, client());
    expect(target).toMatchObject({
      namespace: 'demo',
      pod: 'multi',
      podUid: UID,
      node: 'node-1',
      container: { name: 'app', containerId: ID('c'), runtime: 'containerd' },
      notes: [],
    });
  });

  test('a deployment: through its selector, saying which pod', async () => {
    const c = client();
    const target = await resolveTarget({ kind: 'deployment', name: 'web' }, { namespace: 'demo' }, c);
    expect(target.pod).toBe('web-1');
    expect(target.notes).toEqual(['Found 2 pods, using pod/web-1']);
    expect(c.calls).toEqual(['get deployment demo/web', 'list pods demo -l app=web']);
  });

  test('-l selector', async () => {
    expect((await resolveTarget({ kind: 'selector', selector: 'app=web' }, { namespace: 'demo' }, client())).pod).toBe('web-1');
  });

  test.each([
    [{ kind: 'pod', name: 'nope' }, "pod nope not found in namespace demo; check the name, or pass -n with the pod's namespace"],
    [{ kind: 'deployment', name: 'nope' }, 'deployment nope not found in namespace demo'],
    [{ kind: 'job', name: 'empty' }, 'job empty in namespace demo has no pod selector'],
    [{ kind: 'selector', selector: 'app=none' }, 'no pods in namespace demo match -l app=none'],
  ] as const)('%j → NOT_FOUND', async (ref, message) => {
    const f = await asyncFailure(() => resolveTarget(ref, { namespace: 'demo' }, client()));
    expect(f.code).toBe(ExitCode.NOT_FOUND);
    expect(f.message).toContain(message);
  });
});
