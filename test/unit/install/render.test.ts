// Rendering deploy/ for --image/--namespace, and the option checks in front of it.
import { ExitCode } from '../../../src/contract.js';
import { parseDuration } from '../../../src/duration.js';
import { NsdebugError } from '../../../src/errors.js';
import { completeInstall, validateImage, validateInstall } from '../../../src/cli/install.js';
import { validateAgentNamespace as validateNamespace } from '../../../src/cli/options.js';
import { splitImage } from '../../../src/kube/image-ref.js';
import { applyImageRules, kustomizeBuild, parseKustomization, type KubeObject } from '../../../src/kube/kustomize.js';
import { agentImage, deployDir, objectRef, renderManifests } from '../../../src/kube/manifests.js';

const usage = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    if (err instanceof NsdebugError && err.exitCode === ExitCode.USAGE) return err.message;
    throw err;
  }
  throw new Error('accepted');
};

describe('image references', () => {
  test.each([
    ['nsdebug.local/agent:dev', { name: 'nsdebug.local/agent', tag: 'dev' }],
    ['localhost:5000/agent', { name: 'localhost:5000/agent' }],
    ['localhost:5000/agent:1.2', { name: 'localhost:5000/agent', tag: '1.2' }],
    [`r.example/a@sha256:${'b'.repeat(64)}`, { name: 'r.example/a', digest: `sha256:${'b'.repeat(64)}` }],
    [`r.example/a:1@sha256:${'b'.repeat(64)}`, { name: 'r.example/a', tag: '1', digest: `sha256:${'b'.repeat(64)}` }],
  ])('splitImage(%s)', (ref, parts) => expect(splitImage(ref)).toEqual(parts));

  // kustomize's images transformer, as `kubectl kustomize` applies it
  test.each([
    ['nsdebug.local/agent:dev', [{ name: 'nsdebug.local/agent', newTag: '0.1.0' }], 'nsdebug.local/agent:0.1.0'],
    ['nsdebug.local/agent:dev', [{ name: 'nsdebug.local/agent', newName: 'r.example/agent' }], 'r.example/agent:dev'],
    ['nsdebug.local/agent:dev', [{ name: 'nsdebug.local/agent', digest: 'sha256:abc' }], 'nsdebug.local/agent@sha256:abc'],
    ['nsdebug.local/agent:dev', [{ name: 'other' }], 'nsdebug.local/agent:dev'],
    ['nsdebug.local/agent', [{ name: 'nsdebug.local/agent', newTag: 'x' }], 'nsdebug.local/agent:x'],
  ])('applyImageRules(%s, %j) = %s', (ref, rules, want) => expect(applyImageRules(ref, rules)).toBe(want));

  test.each([
    'nsdebug.local/agent:dev',
    'registry.example:5000/team/nsdebug-agent:0.1.0',
    `ghcr.io/a/b@sha256:${'0'.repeat(64)}`,
    'busybox',
  ])('accepts --image %s', (image) => {
    expect(() => validateImage(image)).not.toThrow();
  });
  test.each(['', 'has space:1', 'UPPER/case', 'a:b:c', '--privileged', 'x@sha256:short'])('refuses --image "%s"', (image) => {
    expect(usage(() => validateImage(image))).toMatch(/^--image must be an image reference/);
  });
});

describe('options', () => {
  test.each([
    ['90', 90_000],
    ['90s', 90_000],
    ['2m', 120_000],
    ['1h30m', 5_400_000],
    ['1m30s', 90_000],
    ['500ms', 500],
  ])('--timeout %s = %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  test.each(['', 'soon', '2 m', '-1s', '5d', '1m-'])('--timeout "%s" is refused, naming the flag', (text) => {
    expect(usage(() => parseDuration(text))).toMatch(/^--timeout must be a duration like 90s/);
  });

  test.each(['nsdebug-system', 'debug', 'a1'])('--namespace %s is accepted', (ns) => expect(() => validateNamespace(ns)).not.toThrow());
  test.each(['Debug', 'kube_system', '-x', 'x-', 'a'.repeat(64), ''])('--namespace "%s" is refused', (ns) => {
    expect(usage(() => validateNamespace(ns))).toMatch(/^--namespace must be a DNS label/);
  });
});

describe('kustomization.yaml', () => {
  test('only fields the installer applies are allowed', () => {
    expect(parseKustomization({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['a.yaml'] })).toEqual({
      resources: ['a.yaml'],
      images: [],
    });
    expect(() => parseKustomization({ resources: ['a.yaml'], patches: [] })).toThrow(/uses patches, which the installer does not apply/);
    expect(() => parseKustomization({ resources: ['../elsewhere/a.yaml'] })).toThrow(/file names in deploy/);
  });
});

describe('renderManifests', () => {
  let objects: KubeObject[];
  beforeAll(async () => {
    objects = await kustomizeBuild(deployDir());
  });

  test('defaults change nothing but the order: the namespace first, the DaemonSet last', () => {
    const rendered = renderManifests(objects);
    expect(rendered).toHaveLength(objects.length);
    expect(rendered[0]?.kind).toBe('Namespace');
    expect(rendered.at(-1)?.kind).toBe('DaemonSet');
    expect(agentImage(rendered)).toBe('nsdebug.local/agent:dev');
  });

  test('--namespace moves every namespaced object and renames the namespace; cluster objects stay', () => {
    const rendered = renderManifests(objects, { namespace: 'debug-agents' });
    expect(rendered.find((o) => o.kind === 'Namespace')?.metadata.name).toBe('debug-agents');
    const clusterScoped = ['Namespace', 'ClusterRole', 'ClusterRoleBinding'];
    for (const o of rendered.filter((x) => !clusterScoped.includes(x.kind)))
      expect([objectRef(o), o.metadata.namespace]).toEqual([objectRef(o), 'debug-agents']);
    expect(rendered.find((o) => o.kind === 'ClusterRole')?.metadata.namespace).toBeUndefined();
    // a cluster binding of the agent's ServiceAccount follows it to its namespace
    const binding = rendered.find((o) => o.kind === 'ClusterRoleBinding' && o.metadata.name === 'nsdebug-agent-namespaces');
    expect(binding?.subjects).toEqual([{ kind: 'ServiceAccount', name: 'nsdebug-agent', namespace: 'debug-agents' }]);
    // the input is not modified
    expect(objects.find((o) => o.kind === 'Namespace')?.metadata.name).toBe('nsdebug-system');
  });

  test('--image replaces the agent container image only', () => {
    const rendered = renderManifests(objects, { image: 'registry.example/nsdebug-agent:0.1.0' });
    expect(agentImage(rendered)).toBe('registry.example/nsdebug-agent:0.1.0');
    expect(agentImage(objects)).toBe('nsdebug.local/agent:dev');
  });

  test('kubectl-style object names', () => {
    expect(renderManifests(objects).map(objectRef)).toEqual([
      'namespace/nsdebug-system',
      'resourcequota/nsdebug-critical-pods',
      'serviceaccount/nsdebug-agent',
      'clusterrole.rbac.authorization.k8s.io/nsdebug-agent-namespaces',
      'clusterrole.rbac.authorization.k8s.io/nsdebug-user',
      'clusterrolebinding.rbac.authorization.k8s.io/nsdebug-agent-namespaces',
      'role.rbac.authorization.k8s.io/nsdebug-agent',
      'role.rbac.authorization.k8s.io/nsdebug-user',
      'rolebinding.rbac.authorization.k8s.io/nsdebug-agent',
      'daemonset.apps/nsdebug-agent',
    ]);
  });
});

describe('install --record', () => {
  let deployed: KubeObject[];
  beforeAll(async () => {
    deployed = await kustomizeBuild(deployDir());
  });
  const agentOf = (objects: KubeObject[]) => {
    const spec = (objects.find((o) => o.kind === 'DaemonSet')?.spec as { template: { spec: Record<string, unknown> } }).template.spec;
    const agent = (spec.containers as Array<{ name: string; env: Array<{ name: string; value?: string }>; volumeMounts: unknown[] }>)[0]!;
    return { agent, volumes: spec.volumes as unknown[] };
  };

  test('hostpath: the environment the agent reads, and the node directory mounted at the same path', () => {
    const recording = { to: 'hostpath' as const, dir: '/data/rec', maxBytes: 2 ** 31, input: true, scope: 'labelled' as const };
    const { agent, volumes } = agentOf(renderManifests(deployed, { recording }));
    expect(agent.env.filter((e) => e.name.startsWith('NSDEBUG_RECORD'))).toEqual([
      { name: 'NSDEBUG_RECORD', value: 'hostpath' },
      { name: 'NSDEBUG_RECORD_MAX_BYTES', value: '2147483648' },
      { name: 'NSDEBUG_RECORD_SCOPE', value: 'labelled' },
      { name: 'NSDEBUG_RECORD_INPUT', value: '1' },
      { name: 'NSDEBUG_RECORD_DIR', value: '/data/rec' },
    ]);
    expect(agent.volumeMounts).toContainEqual({ name: 'recordings', mountPath: '/data/rec' });
    expect(volumes).toContainEqual({ name: 'recordings', hostPath: { path: '/data/rec', type: 'DirectoryOrCreate' } });
    // deploy/'s objects themselves are not changed
    expect(agentOf(deployed).agent.env.some((e) => e.name === 'NSDEBUG_RECORD')).toBe(false);
  });

  test.each([
    [{ record: 'hostpath', 'record-dir': 'relative/dir' }, '--record-dir must be an absolute directory path on the nodes'],
    [{ record: 'hostpath', 'record-dir': '/var/../etc' }, '--record-dir must be an absolute directory path on the nodes'],
    [{ record: 'log', 'record-max-size': '10' }, '--record-max-size must be at least 1Mi'],
    [{ record: 'log', 'record-max-size': 'lots' }, '--record-max-size must be a size like 512Mi or 2Gi, not "lots"'],
  ])('refuses %j', (flags, message) => {
    expect(() => validateInstall(completeInstall(flags))).toThrow(message);
  });
});
