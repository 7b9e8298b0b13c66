// deploy/ is one source of truth for `kubectl apply -k`, `kubectl nsdebug install` and the Helm
// chart (which helm renders in test/charts/): these tests hold them to the same objects and the
// DaemonSet to what the agent needs.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import * as yaml from 'js-yaml';

import { AGENT_EXECUTABLE } from '../../../src/contract.js';
import { kustomizeBuild, type KubeObject } from '../../../src/kube/kustomize.js';
import { cliVersion, deployDir, PART_OF, renderManifests } from '../../../src/kube/manifests.js';
import { packageRoot } from '../../../src/package.js';

const DEPLOY = deployDir();
const key = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const byKey = (objects: KubeObject[]) => Object.fromEntries(objects.map((o) => [key(o), o]));
const loadAll = (text: string) => (yaml.loadAll(text) as KubeObject[]).filter(Boolean);

/** The parts of a DaemonSet these tests read. */
interface Container {
  name: string;
  image: string;
  args?: string[];
  securityContext: { privileged?: boolean; readOnlyRootFilesystem?: boolean; seccompProfile?: { type: string } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  readinessProbe: { exec: { command: string[] } };
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
}
interface PodSpec {
  hostPID?: boolean;
  hostNetwork?: boolean;
  tolerations?: unknown[];
  nodeSelector?: Record<string, string>;
  priorityClassName?: string;
  automountServiceAccountToken?: boolean;
  containers: Container[];
  volumes: Array<{ name: string; hostPath?: { path: string } }>;
}
interface DaemonSet extends KubeObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    updateStrategy: { type: string };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

let objects: KubeObject[];
beforeAll(async () => {
  objects = await kustomizeBuild(deployDir());
});

const find = (kind: string, name?: string) => {
  const o = objects.find((x) => x.kind === kind && (!name || x.metadata.name === name));
  if (!o) throw new Error(`deploy/ has no ${kind} ${name ?? ''}`);
  return o;
};

describe('deploy/', () => {
  test('kustomization.yaml lists every manifest in deploy/, and no example', () => {
    const kustomization = yaml.load(readFileSync(join(DEPLOY, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    const manifests = readdirSync(DEPLOY).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(manifests.sort());
    expect(kustomization.resources.some((r) => r.includes('example'))).toBe(false);
  });

  test('every document parses and carries the part-of label uninstall relies on', () => {
    expect(objects.length).toBeGreaterThanOrEqual(6);
    for (const o of objects) expect([key(o), o.metadata.labels?.[PART_OF.key]]).toEqual([key(o), PART_OF.value]);
  });

  const kubectl = which('kubectl');
  if (!kubectl) console.warn('skipped: no kubectl on PATH to render deploy/ with');
  (kubectl ? test : test.skip)('the installer reads the same objects `kubectl kustomize deploy/` renders', () => {
    const rendered = loadAll(execFileSync(kubectl!, ['kustomize', DEPLOY], { encoding: 'utf8' }));
    expect(byKey(objects)).toEqual(byKey(rendered));
  });

  test('the namespace admits privileged pods', () => {
    const ns = find('Namespace');
    expect(ns.metadata.name).toBe('nsdebug-system');
    for (const mode of ['enforce', 'audit', 'warn']) expect(ns.metadata.labels?.[`pod-security.kubernetes.io/${mode}`]).toBe('privileged');
  });

  test("the agent ServiceAccount's grants: the Leases of its live sessions in its namespace, and reading namespaces", () => {
    expect(find('ServiceAccount', 'nsdebug-agent').automountServiceAccountToken).toBe(false);
    const bindings = objects.filter((o) => o.kind.endsWith('Binding'));
    expect(bindings.map((b) => `${b.kind}/${b.metadata.name}`)).toEqual([
      'RoleBinding/nsdebug-agent',
      'ClusterRoleBinding/nsdebug-agent-namespaces',
    ]);
    for (const b of bindings) expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'nsdebug-agent', namespace: 'nsdebug-system' }]);
    const rules = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name)?.rules;
    expect(rules('Role', 'nsdebug-agent')).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create', 'delete', 'list', 'update'] },
    ]);
    expect(rules('ClusterRole', 'nsdebug-agent-namespaces')).toEqual([{ apiGroups: [''], resources: ['namespaces'], verbs: ['get'] }]);
  });

  describe('the DaemonSet', () => {
    const ds = () => find('DaemonSet', 'nsdebug-agent') as DaemonSet;
    const pod = () => ds().spec.template.spec;
    const agent = () => pod().containers.find((c) => c.name === 'agent') as Container;

    test('is labelled for the CLI to find it, with the package version', () => {
      const labels = {
        'app.kubernetes.io/name': 'nsdebug-agent',
        'app.kubernetes.io/part-of': 'nsdebug',
        'app.kubernetes.io/version': cliVersion(),
      };
      expect(ds().metadata.labels).toMatchObject(labels);
      expect(ds().spec.template.metadata.labels).toMatchObject(labels);
      expect(ds().spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'nsdebug-agent' });
    });

    test('runs privileged in the host PID namespace on every node, whatever its taints', () => {
      expect(pod().hostPID).toBe(true);
      expect(pod().hostNetwork).toBeUndefined();
      expect(agent().securityContext.privileged).toBe(true);
      // unfiltered itself, so it can copy a target's seccomp filter for the session
      expect(agent().securityContext.seccompProfile).toEqual({ type: 'Unconfined' });
      expect(pod().tolerations).toEqual([{ operator: 'Exists' }]);
      expect(pod().priorityClassName).toBe('system-node-critical');
      // mounted for the session port; deploy/ grants the account nothing (see above)
      expect(pod().automountServiceAccountToken).toBe(true);
      const field = (fieldPath: string) => ({ valueFrom: { fieldRef: { fieldPath } } });
      expect(agent().env).toEqual([
        { name: 'NSDEBUG_NODE_NAME', ...field('spec.nodeName') },
        { name: 'NSDEBUG_POD_NAME', ...field('metadata.name') },
        { name: 'NSDEBUG_POD_UID', ...field('metadata.uid') },
        { name: 'NSDEBUG_POD_NAMESPACE', ...field('metadata.namespace') },
      ]);
      expect(ds().spec.updateStrategy.type).toBe('RollingUpdate');
    });

    test('runs `nsdebug-agent serve` from the local image, ready when `info --check` passes', () => {
      expect(agent().image).toBe('nsdebug.local/agent:dev');
      expect(agent().args).toEqual(['serve', '--max-session=12h']);
      expect(agent().readinessProbe.exec.command).toEqual([AGENT_EXECUTABLE, 'info', '--check']);
      expect(agent().resources.requests).toEqual(expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }));
      expect(agent().resources.limits).toEqual(expect.objectContaining({ memory: expect.any(String) }));
    });

    test("mounts only the host paths it needs: the cgroup tree (rw: session cgroups) and containerd's run dir (ro)", () => {
      const hostPaths = pod().volumes.filter((v) => v.hostPath);
      const mounts = Object.fromEntries(agent().volumeMounts.map((m) => [m.name, m]));
      expect(hostPaths.map((v) => [v.hostPath?.path, mounts[v.name]?.mountPath, Boolean(mounts[v.name]?.readOnly)])).toEqual([
        ['/sys/fs/cgroup', '/host/sys/fs/cgroup', false],
        ['/run/containerd', '/run/containerd', true],
      ]);
      // not over the container's own /sys/fs/cgroup: under cgroup v2 that is where its own cgroup is
      expect(agent().securityContext.readOnlyRootFilesystem).toBe(true);
      // serve's audit socket lives here; `enter` processes in the same container reach it
      expect(mounts.run).toEqual({ name: 'run', mountPath: '/run/nsdebug' });
    });
  });

  describe('nsdebug-user', () => {
    type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
    const rules = (kind: string) => (find(kind, 'nsdebug-user') as KubeObject & { rules: Rule[] }).rules;
    const allows = (rs: Rule[], group: string, resource: string, verb: string) =>
      rs.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));

    test('cluster-wide: read pods, list nodes, review access; never exec', () => {
      const cr = rules('ClusterRole');
      expect(allows(cr, '', 'pods', 'list')).toBe(true);
      expect(allows(cr, '', 'pods', 'get')).toBe(true);
      expect(allows(cr, '', 'nodes', 'list')).toBe(true);
      expect(allows(cr, 'authorization.k8s.io', 'selfsubjectaccessreviews', 'create')).toBe(true);
      expect(cr.some((r) => r.resources.some((res) => res.includes('exec') || res === '*') || r.verbs.includes('*'))).toBe(false);
    });

    test('exec only into the agent pods, in nsdebug-system', () => {
      const role = find('Role', 'nsdebug-user');
      expect(role.metadata.namespace).toBe('nsdebug-system');
      expect(allows(rules('Role'), '', 'pods/exec', 'create')).toBe(true);
    });

    test('the example binding binds both, and is not installed', () => {
      const examples = loadAll(readFileSync(join(DEPLOY, 'examples', 'nsdebug-user-binding.yaml'), 'utf8'));
      expect(
        examples.map((o) => [o.kind, (o.roleRef as { kind: string; name: string }).kind, (o.roleRef as { name: string }).name]),
      ).toEqual([
        ['ClusterRoleBinding', 'ClusterRole', 'nsdebug-user'],
        ['RoleBinding', 'Role', 'nsdebug-user'],
      ]);
      expect(examples.find((o) => o.kind === 'RoleBinding')?.metadata.namespace).toBe('nsdebug-system');
    });
  });
});

describe('the Helm chart', () => {
  const CHART = join(DEPLOY, 'helm', 'nsdebug');
  test('Chart.yaml version and appVersion follow package.json', () => {
    const chart = yaml.load(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
    expect([chart.version, chart.appVersion]).toEqual([cliVersion(), cliVersion()]);
  });
});

describe('the krew manifest', () => {
  interface KrewPlatform {
    selector: { matchExpressions?: unknown[]; matchLabels?: unknown };
    uri: string;
    sha256: string;
    bin: string;
  }
  const manifest = yaml.load(readFileSync(join(DEPLOY, 'krew', 'nsdebug.yaml'), 'utf8')) as {
    apiVersion: string;
    kind: string;
    metadata: { name: string };
    spec: { version: string; shortDescription: string; description: string; platforms: KrewPlatform[] };
  };
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

  test('is a krew Plugin named nsdebug at the package version', () => {
    expect(manifest.apiVersion).toBe('krew.googlecontainertools.github.com/v1alpha2');
    expect(manifest.kind).toBe('Plugin');
    expect(manifest.metadata.name).toBe('nsdebug');
    expect(manifest.spec.version).toBe(`v${pkg.version}`);
    expect(manifest.spec.shortDescription.length).toBeLessThanOrEqual(50);
    expect(manifest.spec.description).toEqual(expect.any(String));
  });

  test("every platform runs the package's kubectl-nsdebug entry point", () => {
    expect(manifest.spec.platforms.length).toBeGreaterThan(0);
    for (const p of manifest.spec.platforms) {
      expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(p.uri).toMatch(/^https:\/\/.+\.tar\.gz$/);
      expect(p.bin).toBe(pkg.bin['kubectl-nsdebug']);
      expect(p.selector.matchExpressions ?? p.selector.matchLabels).toBeDefined();
    }
  });
});

describe('deploy/session-auth/', () => {
  type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
  let extra: KubeObject[] = [];
  beforeAll(async () => {
    extra = await kustomizeBuild(join(DEPLOY, 'session-auth'));
  });
  const named = (kind: string, name: string): unknown => extra.find((o) => o.kind === kind && o.metadata.name === name);
  const rulesOf = (kind: string, name: string) => (named(kind, name) as { rules: Rule[] }).rules;
  const verbsOn = (rules: Rule[], resource: string) => rules.filter((r) => r.resources.includes(resource)).flatMap((r) => r.verbs);

  test("every object is labelled as nsdebug's, for uninstall", () => {
    for (const o of extra) expect([key(o), o.metadata.labels?.[PART_OF.key]]).toEqual([key(o), PART_OF.value]);
  });

  test('admission pins spec.requester to the creating user, on every DebugSession create', () => {
    const policy = named('ValidatingAdmissionPolicy', 'nsdebug-debugsession-requester') as {
      spec: {
        failurePolicy: string;
        matchConstraints: { resourceRules: Array<{ operations: string[]; resources: string[] }> };
        validations: Array<{ expression: string }>;
      };
    };
    expect(policy.spec.failurePolicy).toBe('Fail');
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      expect.objectContaining({ operations: ['CREATE'], resources: ['debugsessions'] }),
    ]);
    expect(policy.spec.validations.map((v) => v.expression)).toEqual([
      'object.spec.requester == request.userInfo.username',
      '!has(object.spec.namespaces) || size(object.spec.namespaces) == 0',
    ]);
    expect(
      (named('ValidatingAdmissionPolicyBinding', 'nsdebug-debugsession-requester') as { spec: { validationActions: string[] } }).spec
        .validationActions,
    ).toEqual(['Deny']);
  });

  test('the DebugSession spec is immutable and carries only a hash of the secret', () => {
    const crd = named('CustomResourceDefinition', 'debugsessions.nsdebug.io') as {
      spec: {
        versions: Array<{
          subresources: object;
          schema: {
            openAPIV3Schema: {
              properties: {
                spec: { 'x-kubernetes-validations': Array<{ rule: string }>; properties: Record<string, { pattern?: string }> };
              };
            };
          };
        }>;
      };
    };
    const version = crd.spec.versions[0]!;
    expect(version.subresources).toEqual({ status: {} });
    const spec = version.schema.openAPIV3Schema.properties.spec;
    expect(spec['x-kubernetes-validations'].map((v) => v.rule)).toEqual([
      'self == oldSelf',
      // every namespace of the target, never a subset (the rest would be the agent's)
      '!has(self.namespaces) || size(self.namespaces) == 0',
    ]);
    expect(spec.properties.secretHash?.pattern).toBe('^[0-9a-f]{64}$');
    expect(Object.keys(spec.properties)).not.toContain('secret');
  });

  test('the agent may read pods, read, watch and delete DebugSessions and write only their status', () => {
    const rules = rulesOf('ClusterRole', 'nsdebug-agent-sessions');
    // watch: a session ends when its DebugSession is deleted
    expect(verbsOn(rules, 'debugsessions')).toEqual(['get', 'watch', 'delete']);
    expect(verbsOn(rules, 'debugsessions/status')).toEqual(['update']);
    expect(verbsOn(rules, 'pods')).toEqual(['get']);
    // and the requester policy, to serve nothing while it is missing
    const admission = rules.find((r) => r.apiGroups.includes('admissionregistration.k8s.io')) as Rule & { resourceNames: string[] };
    expect([admission.verbs, admission.resourceNames]).toEqual([['get'], ['nsdebug-debugsession-requester']]);
    expect(rules.flatMap((r) => r.resources).sort()).toEqual([
      'debugsessions',
      'debugsessions/status',
      'pods',
      'validatingadmissionpolicies',
      'validatingadmissionpolicybindings',
    ]);
  });

  test('install applies the requester policy before the CRD (uninstall deletes them in reverse)', () => {
    const kinds = renderManifests([...objects, ...extra]).map((o) => o.kind);
    expect(kinds.indexOf('ValidatingAdmissionPolicy')).toBeLessThan(kinds.indexOf('CustomResourceDefinition'));
    expect(kinds.indexOf('ValidatingAdmissionPolicyBinding')).toBeLessThan(kinds.indexOf('CustomResourceDefinition'));
  });

  test('users get DebugSessions and port-forward, never exec or status', () => {
    const user = rulesOf('ClusterRole', 'nsdebug-session-user');
    const reach = rulesOf('Role', 'nsdebug-session-user');
    expect(verbsOn(user, 'debugsessions')).toContain('create');
    expect(verbsOn(reach, 'pods/portforward')).toEqual(['get', 'create']);
    for (const rs of [user, reach]) {
      expect(rs.some((r) => r.resources.some((res) => res === 'pods/exec' || res.endsWith('/status') || res === '*'))).toBe(false);
    }
  });
});
