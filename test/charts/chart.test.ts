// The Helm chart renders the objects of deploy/ (the one source of truth), and its values do what
// README says. Needs a helm client: test/run-tiers.sh builds one (test/support/helm.sh, cached)
// and passes it as NSDEBUG_HELM; without one the tier is reported skipped, with the reason.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import * as yaml from 'js-yaml';

import { kustomizeBuild, type KubeObject } from '../../src/kube/kustomize.js';
import { deployDir, renderManifests } from '../../src/kube/manifests.js';

const DEPLOY = deployDir();
const CHART = join(DEPLOY, 'helm', 'nsdebug');
/** Labels the chart adds for Helm's bookkeeping; everything else equals deploy/. */
const HELM_LABELS = ['app.kubernetes.io/instance', 'app.kubernetes.io/managed-by', 'helm.sh/chart'];
const helm = [process.env.NSDEBUG_HELM].find((p): p is string => Boolean(p && existsSync(p)));
if (!helm) console.warn('skipped: no helm client (NSDEBUG_HELM unset or missing; test/support/helm.sh builds one)');

const key = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const byKey = (objects: KubeObject[]) => Object.fromEntries(objects.map((o) => [key(o), o]));
const loadAll = (text: string) => (yaml.loadAll(text) as KubeObject[]).filter(Boolean);
interface PodSpec {
  tolerations?: unknown[];
  nodeSelector?: Record<string, string>;
  priorityClassName?: string;
  containers: Array<{ image: string; resources: unknown }>;
}
const podSpecOf = (objects: KubeObject[]) =>
  (objects.find((o) => o.kind === 'DaemonSet') as KubeObject & { spec: { template: { spec: PodSpec } } }).spec.template.spec;

let objects: KubeObject[];
beforeAll(async () => {
  objects = await kustomizeBuild(deployDir());
});

(helm ? describe : describe.skip)(`the Helm chart, rendered by ${helm ?? 'helm (none)'}`, () => {
  const template = (...args: string[]) =>
    loadAll(execFileSync(helm as string, ['template', 'nsdebug', CHART, ...args], { encoding: 'utf8' }));
  const withoutHelmLabels = (o: KubeObject): KubeObject => {
    const copy = structuredClone(o);
    for (const label of HELM_LABELS) delete copy.metadata.labels?.[label];
    return copy;
  };

  test('renders the same objects as deploy/ with its default values', () => {
    const rendered = template().map(withoutHelmLabels);
    expect(byKey(rendered)).toEqual(byKey(objects));
    // and Helm's labels are on every object, for `helm` to find its own
    for (const o of template()) expect(o.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('Helm');
  });

  test('renders what install renders for another namespace and image', () => {
    const rendered = template(
      '--set',
      'namespace=debug-agents',
      '--set',
      'image.repository=registry.example/nsdebug-agent',
      '--set',
      'image.tag=0.1.0',
    ).map(withoutHelmLabels);
    expect(byKey(rendered)).toEqual(
      byKey(renderManifests(objects, { namespace: 'debug-agents', image: 'registry.example/nsdebug-agent:0.1.0' })),
    );
  });

  test.each([
    { to: 'hostpath' as const, dir: '/data/nsdebug', maxBytes: 5 * 2 ** 30, input: true, scope: 'labelled' as const },
    { to: 'log' as const, dir: '/var/log/nsdebug/recordings', maxBytes: 2 ** 30, input: false, scope: 'all' as const },
  ])('recording values render what install --record renders: $to', (recording) => {
    const rendered = template(
      '--set',
      `recording.to=${recording.to}`,
      '--set',
      `recording.hostPath=${recording.dir}`,
      '--set',
      `recording.maxBytes=${recording.maxBytes}`,
      '--set',
      `recording.input=${recording.input}`,
      '--set',
      `recording.scope=${recording.scope}`,
    ).map(withoutHelmLabels);
    expect(byKey(rendered)).toEqual(byKey(renderManifests(objects, { recording })));
  });

  test("sessionAuth=true adds the objects of deploy/session-auth/, in the chart's namespace", async () => {
    const sessionAuth = await kustomizeBuild(join(DEPLOY, 'session-auth'));
    const rendered = template('--set', 'sessionAuth=true', '--set', 'namespace=debug-agents').map(withoutHelmLabels);
    expect(byKey(rendered)).toEqual(byKey(renderManifests([...objects, ...sessionAuth], { namespace: 'debug-agents' })));
  });

  test('values set tolerations, nodeSelector, resources and the priority class', () => {
    const values = [
      '--set-json',
      'tolerations=[{"key":"dedicated","operator":"Equal","value":"debug","effect":"NoSchedule"}]',
      '--set-json',
      'nodeSelector={"pool":"debug"}',
      '--set-json',
      'resources={"requests":{"cpu":"50m","memory":"100Mi"},"limits":{"memory":"1Gi"}}',
      '--set',
      'priorityClassName=system-cluster-critical',
      '--set',
      'image.digest=sha256:' + 'a'.repeat(64),
      '--set',
      'createNamespace=false',
    ];
    const rendered = template(...values);
    const spec = podSpecOf(rendered);
    expect(spec.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'debug', effect: 'NoSchedule' }]);
    // Helm merges maps from --set into the defaults
    expect(spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux', pool: 'debug' });
    expect(spec.containers[0]?.resources).toEqual({ requests: { cpu: '50m', memory: '100Mi' }, limits: { cpu: '1', memory: '1Gi' } });
    expect(spec.priorityClassName).toBe('system-cluster-critical');
    expect(spec.containers[0]?.image).toBe(`nsdebug.local/agent@sha256:${'a'.repeat(64)}`);
    expect(rendered.some((o) => o.kind === 'Namespace')).toBe(false);
    const quota = rendered.find((o) => o.kind === 'ResourceQuota') as KubeObject & {
      spec: { scopeSelector: { matchExpressions: Array<{ values: string[] }> } };
    };
    expect(quota.spec.scopeSelector.matchExpressions[0]?.values).toEqual(['system-cluster-critical']);
  });

  test('helm lint passes', () => {
    expect(execFileSync(helm!, ['lint', CHART], { encoding: 'utf8' })).toMatch(/0 chart\(s\) failed/);
  });
});
