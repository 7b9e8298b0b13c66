// The fake fleet next to the real nodes (test/cluster/scale.sh made it): kwok plays the kubelet of
// each fake node, but no agent process can run there, so what an agent publishes of itself is
// published for it here (fakeAgentReports: the report Lease a real agent writes, owned by its pod);
// an agent that is not ready is one kwok reports so (markAgentsNotReady labels its pod). Everything else — the DaemonSet's pods, their scheduling, the API's
// answers — is the real control plane's.
import { AGENT_REPORT, CONTRACT_VERSION, REPORT_EVERY_S, SESSION_LABELS, type AgentInfo } from '../../../src/contract.js';
import { AGENT_SELECTOR, cliVersion } from '../../../src/kube/manifests.js';
import { packageRoot } from '../../../src/package.js';
import { kubectl, kubectlJson, waitFor } from '../../e2e/helpers/kube.js';

// the package's root and version whether this runs from test/ (jest) or dist/test/ (the bench)
export const ROOT = packageRoot();
export const VERSION = cliVersion();
export const AGENT_NAMESPACE = 'nsdebug-system';
export const SCALE_NAMESPACE = 'nsdebug-scale';
export const FAKE_NODE_LABEL = 'nsdebug.test/kwok=true';
/** kwok keeps a pod with this label running but not ready */
const NOT_READY_LABEL = 'nsdebug.test/not-ready';

interface Pod {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string; containers: Array<{ name: string; image: string }> };
  status: { conditions?: Array<{ type: string; status: string }> };
}

export const fakeNodeNames = async () =>
  (await kubectlJson<{ items: Array<{ metadata: { name: string } }> }>(['get', 'nodes', '-l', FAKE_NODE_LABEL])).items
    .map((n) => n.metadata.name)
    .sort();

/** The agent pods bound to fake nodes, by node. */
export async function fakeAgentPods(): Promise<Map<string, Pod>> {
  const fake = new Set(await fakeNodeNames());
  const pods = await kubectlJson<{ items: Pod[] }>(['-n', AGENT_NAMESPACE, 'get', 'pods', '-l', AGENT_SELECTOR]);
  return new Map(pods.items.filter((p) => p.spec.nodeName && fake.has(p.spec.nodeName)).map((p) => [p.spec.nodeName!, p]));
}

const apply = async (items: unknown[]) => {
  const r = await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager', 'nsdebug-scale-test', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
    timeout: 300_000,
  });
  if (r.exitCode !== 0) throw new Error(`kubectl apply: ${String(r.stderr)}`);
};

/** For every agent pod on a fake node, the report Lease a real agent would publish of itself. */
export async function fakeAgentReports(): Promise<number> {
  const pods = await fakeAgentPods();
  const info: AgentInfo = {
    version: VERSION,
    contractVersion: CONTRACT_VERSION,
    runtime: 'containerd',
    cgroupVersion: 'v2',
    cgroupDriver: 'systemd',
    kernel: '6.12.48-kwok',
    checks: [],
  };
  const renewTime = new Date().toISOString().replace('Z', '000Z');
  await apply(
    [...pods].map(([node, pod]) => ({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: pod.metadata.name,
        namespace: AGENT_NAMESPACE,
        labels: { [AGENT_REPORT.label]: 'true', [SESSION_LABELS.node]: node, 'app.kubernetes.io/part-of': 'nsdebug' },
        annotations: { [AGENT_REPORT.annotation]: JSON.stringify(info) },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid }],
      },
      spec: { holderIdentity: pod.metadata.name, leaseDurationSeconds: 3 * REPORT_EVERY_S, renewTime },
    })),
  );
  return pods.size;
}

/** The agents on these fake nodes: running, not ready — kwok writes their status (config/kwok-stages.yaml). */
export async function markAgentsNotReady(nodes: string[]): Promise<void> {
  const pods = await fakeAgentPods();
  const names = nodes.map((node) => {
    const pod = pods.get(node);
    if (!pod) throw new Error(`no agent pod on fake node ${node}`);
    return pod.metadata.name;
  });
  const r = await kubectl(['-n', AGENT_NAMESPACE, 'label', 'pod', ...names, `${NOT_READY_LABEL}=true`]);
  if (r.exitCode !== 0) throw new Error(`labelling ${names.join(', ')}: ${String(r.stderr)}`);
  await waitFor(
    'kwok to make them not ready',
    async () => {
      const now = await fakeAgentPods();
      return nodes.every((node) => now.get(node)?.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'False'));
    },
    60_000,
  );
}
