// `kubectl nsdebug status`: one row per node — its agent pod, whether it is ready, and what the
// agent itself reports (`nsdebug-agent info`, run by exec through the API server): its version
// and contract version next to the CLI's, the runtime, cgroup layout and kernel. Nodes without an
// agent are shown too, with what the Node object says. Row building is pure; src/cli/status.ts
// prints the report.
import { AGENT_CONTAINER, agentPodState, currentPods, nodeOfPod } from '../agent-health.js';
import { CONTRACT_VERSION, DEBUG_SESSION, SESSION_POLICY, agentCommand, type AgentInfo } from '../contract.js';
import type { NodeLike, PodLike } from '../pod.js';
import { apiClients, apiStatusCode, clientNode, describeApiError, type KubeConnection } from './config.js';
import { Collector, createExecTransport, ExecStream } from './exec.js';
import { AGENT_SELECTOR } from './manifests.js';

export interface StatusClient {
  listNodes(): Promise<NodeLike[]>;
  listAgentPods(namespace: string): Promise<PodLike[]>;
  /** `nsdebug-agent info --output=json` in that pod, parsed; rejects with a one-line reason */
  agentInfo(namespace: string, pod: string): Promise<AgentInfo>;
  /** whether the API serves DebugSessions, and whether the admission policy that pins their requester is bound */
  sessionAuth(): Promise<{ resource: boolean; policy: boolean | 'unknown' }>;
}

export interface NodeStatus {
  node: string;
  /** the agent pod's name; undefined where no agent pod runs */
  pod?: string;
  ready: boolean;
  version?: string;
  contractVersion?: number;
  runtime: string;
  cgroup?: string;
  kernel: string;
  /** why the row is not all good, in words; empty when it is */
  problems: string[];
  /** the agent's own report, for -o json */
  info?: AgentInfo;
}

export interface StatusReport {
  namespace: string;
  cli: { version: string; contractVersion: number };
  nodes: NodeStatus[];
  /** session authorization (deploy/session-auth/) */
  sessionAuth: { resource: boolean; policy: boolean | 'unknown' };
}

/** "containerd://1.7.2" → "containerd 1.7.2" */
const runtimeOfNode = (node: NodeLike) => node.status?.nodeInfo?.containerRuntimeVersion?.replace('://', ' ') ?? 'unknown';

/** One node's row from what the API and the agent said; pure. */
export function nodeStatus(
  node: NodeLike,
  pod: PodLike | undefined,
  info: AgentInfo | Error | undefined,
  cli: StatusReport['cli'],
): NodeStatus {
  const name = node.metadata?.name ?? '?';
  const base = { node: name, runtime: runtimeOfNode(node), kernel: node.status?.nodeInfo?.kernelVersion ?? 'unknown' };
  if (!pod) return { ...base, ready: false, problems: ['no agent pod on this node'] };
  const state = agentPodState(pod);
  const problems: string[] = [];
  if (!state.ready) problems.push(`not ready: ${state.state}`);
  const row: NodeStatus = { ...base, pod: state.pod, ready: state.ready, problems };
  if (info instanceof Error) {
    problems.push(`agent info failed: ${info.message}`);
    return row;
  }
  if (!info) return row;
  row.info = info;
  row.version = info.version;
  row.contractVersion = info.contractVersion;
  // the agent knows only the sockets in their usual places; the Node object always names it
  if (info.runtime !== 'unknown') row.runtime = info.runtime;
  row.cgroup = `${info.cgroupVersion}/${info.cgroupDriver}`;
  row.kernel = info.kernel;
  if (info.contractVersion !== cli.contractVersion) {
    problems.push(
      `contract ${info.contractVersion} differs from the CLI's ${cli.contractVersion}: sessions will be refused; run \`kubectl nsdebug install\` with this CLI`,
    );
  } else if (info.version !== cli.version) {
    problems.push(`agent ${info.version} differs from the CLI's ${cli.version}`);
  }
  for (const c of info.checks ?? []) if (!c.ok) problems.push(`check failed: ${c.name}: ${c.detail}`);
  return row;
}

const CONCURRENCY = 8;

async function mapLimited<T, R>(items: T[], limit: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await f(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export async function collectStatus(opts: { namespace: string; cliVersion: string }, client: StatusClient): Promise<StatusReport> {
  const cli = { version: opts.cliVersion, contractVersion: CONTRACT_VERSION };
  const [nodes, pods, sessionAuth] = await Promise.all([client.listNodes(), client.listAgentPods(opts.namespace), client.sessionAuth()]);
  const podByNode = new Map(currentPods(pods).map((p) => [nodeOfPod(p), p]));
  const names = new Set(nodes.map((n) => n.metadata?.name ?? '?'));
  // an agent pod for a node the API no longer lists still gets a row
  const all = [...nodes, ...[...podByNode.keys()].filter((n) => !names.has(n)).map((name) => ({ metadata: { name } }))];
  all.sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const rows = await mapLimited(all, CONCURRENCY, async (node) => {
    const pod = podByNode.get(node.metadata?.name ?? '?');
    // a running agent answers `info` even when not ready: its failed checks say why
    const running = pod?.status?.containerStatuses?.some((c) => c.state?.running) && !pod.metadata?.deletionTimestamp;
    const info =
      running && pod?.metadata?.name
        ? await client
            .agentInfo(opts.namespace, pod.metadata.name)
            .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
        : undefined;
    return nodeStatus(node, pod, info, cli);
  });
  return { namespace: opts.namespace, cli, nodes: rows, sessionAuth };
}

/** The agent's `info` JSON, checked for the fields status shows. */
export function parseAgentInfo(stdout: string): AgentInfo {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new Error(`the agent printed no JSON: ${stdout.trim().split('\n')[0]?.slice(0, 200) ?? ''}`);
  }
  const info = parsed as Partial<AgentInfo>;
  if (typeof info.version !== 'string' || typeof info.contractVersion !== 'number')
    throw new Error('the agent answered without a version: is it an nsdebug agent?');
  return { runtime: 'unknown', cgroupVersion: 'unknown', cgroupDriver: 'unknown', kernel: 'unknown', checks: [], ...info } as AgentInfo;
}

/** argv run in the agent pod for status. */
export const statusArgv = () => agentCommand({ operation: 'info', output: 'json' });

// ---- over the API ----

const INFO_TIMEOUT_MS = 20_000;

export async function createStatusClient(conn: KubeConnection): Promise<StatusClient> {
  const { core } = await apiClients(conn);
  const exec = new ExecStream(await createExecTransport(conn));
  const call = async <T>(doing: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      throw describeApiError(err, doing, conn, 'status needs the nsdebug-user roles (ask your cluster admin to bind them)');
    }
  };
  return {
    listNodes: async () => (await call('list nodes', () => core.listNode())).items,
    listAgentPods: async (namespace) =>
      (await call(`list the agent pods in ${namespace}`, () => core.listNamespacedPod({ namespace, labelSelector: AGENT_SELECTOR }))).items,
    sessionAuth: async () => {
      const k8s = await clientNode();
      const [resource, policy] = await Promise.all([
        // discovery: any authenticated user may read it
        conn.kc
          .makeApiClient(k8s.CustomObjectsApi)
          .getAPIResources({ group: DEBUG_SESSION.group, version: DEBUG_SESSION.version })
          .then(
            (list) => list.resources.some((r) => r.name === DEBUG_SESSION.plural),
            () => false,
          ),
        conn.kc
          .makeApiClient(k8s.AdmissionregistrationV1Api)
          .readValidatingAdmissionPolicyBinding({ name: SESSION_POLICY })
          .then(
            () => true,
            (err: unknown) => (apiStatusCode(err) === 404 ? false : ('unknown' as const)),
          ),
      ]);
      return { resource, policy };
    },
    agentInfo: async (namespace, pod) => {
      const stdout = new Collector();
      const stderr = new Collector();
      const run = exec.run({
        namespace,
        pod,
        container: AGENT_CONTAINER,
        command: statusArgv(),
        stdout,
        stderr,
        tty: false,
        connectTimeoutMs: conn.requestTimeoutMs,
        describe: `the nsdebug agent pod ${namespace}/${pod}`,
        where: conn,
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${INFO_TIMEOUT_MS / 1000}s`)), INFO_TIMEOUT_MS);
      });
      try {
        const code = await Promise.race([run, timeout]);
        if (code !== 0) throw new Error(`\`${statusArgv().join(' ')}\` exited ${code}: ${stderr.text().trim().split('\n')[0] ?? ''}`);
        return parseAgentInfo(stdout.text());
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
