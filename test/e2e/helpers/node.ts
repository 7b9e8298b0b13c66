// The node type an e2e run targets. test/run-tiers.sh runs the e2e suites once per node type:
//   tier e2e     NSDEBUG_E2E_NODE unset: the legacy node on this host (cgroup v1 hybrid, cgroupfs,
//                containerd 1.6), demo workloads in namespace `demo`
//   tier e2e-vm  NSDEBUG_E2E_NODE=nsdebug-vm1: a production-shaped VM node (systemd, cgroup v2,
//                containerd 2), demo workloads in `demo-vm`
// Every pod made in a target namespace lands on its node (the namespace's PodNodeSelector
// annotation), so suites name the namespace and never a node. What a test checks on the node
// itself (its /proc, pgrep) runs there: here, or over ssh on a VM (cluster.sh ssh).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { execa, type Options, type Result } from 'execa';

export const HOST_NODE = 'nsdebug-node';
const CLUSTER_SH = join(process.cwd(), 'test', 'cluster', 'cluster.sh');

export interface TargetNode {
  /** the Node's name */
  name: string;
  /** where the demo workloads for this node run; test pods made in it land on this node too */
  namespace: string;
  /** a QEMU VM (commands on the node go over ssh), not this host */
  vm: boolean;
  /** the node annotation for namespaces a test creates, pinning their pods to this node */
  nodeSelector: Record<string, string>;
}

export function targetNode(): TargetNode {
  const name = process.env.NSDEBUG_E2E_NODE || HOST_NODE;
  const vm = name !== HOST_NODE;
  return {
    name,
    namespace: vm ? 'demo-vm' : 'demo',
    vm,
    nodeSelector: { 'scheduler.alpha.kubernetes.io/node-selector': `kubernetes.io/hostname=${name}` },
  };
}

const shellQuote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/** ARGV on node NAME, as root: directly on this host, over ssh on a VM. Never throws on a non-zero exit. */
export function onNode(node: string, argv: string[], opts: Options = {}): Promise<Result> {
  if (node === HOST_NODE) return execa(argv[0]!, argv.slice(1), { reject: false, ...opts }) as Promise<Result>;
  return execa('bash', [CLUSTER_SH, 'ssh', node, argv.map(shellQuote).join(' ')], { reject: false, ...opts }) as Promise<Result>;
}

/** PIDs (as the node numbers them) of processes whose command line matches pattern (pgrep -f), on node NAME. */
export async function pgrepOn(node: string, pattern: string, flags: string[] = []): Promise<number[]> {
  const r = await onNode(node, ['pgrep', ...flags, '-f', pattern]);
  return String(r.stdout ?? '')
    .split('\n')
    .filter(Boolean)
    .map(Number);
}

/** `cluster.sh ARGS` (restart a component, …). */
export function clusterSh(args: string[], opts: Options = {}): Promise<Result> {
  return execa('bash', [CLUSTER_SH, ...args], { reject: false, ...opts }) as Promise<Result>;
}

/**
 * The node's containerd socket as a local address: this host's own, or a VM's forwarded over ssh
 * (a unix-socket forward), for a real CRI client against the node's real runtime. Call close().
 */
export async function nodeContainerd(node: string, hostAddress: string): Promise<{ address: string; close: () => void }> {
  if (node === HOST_NODE) return { address: hostAddress, close: () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'nsdebug-e2e-cri-'));
  const socket = join(dir, 'containerd.sock');
  const forward = execa(
    'bash',
    [CLUSTER_SH, 'ssh', node, '-o', 'ExitOnForwardFailure=yes', '-N', '-L', `${socket}:/run/containerd/containerd.sock`],
    // a connection of its own: the forward ends with this ssh process (cluster.sh execs it)
    { reject: false, env: { NSDEBUG_SSH_MUX: 'no' } },
  );
  const close = () => {
    forward.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
  if (!existsSync(socket)) {
    close();
    throw new Error(`no ssh forward of ${node}'s containerd socket after 10 s`);
  }
  return { address: `unix://${socket}`, close };
}

/** Under emulation (a VM node) everything takes several times longer: scale a timeout or bound. */
export const slow = (ms: number): number => (targetNode().vm ? ms * 4 : ms);
/** How long a fixture pod may take to start and end (or crash into back-off): a loaded emulated VM node takes minutes. */
export const POD_WAIT_MS = slow(75_000);

/** The agent pod on node NAME (the one that audits sessions in that node's containers), not one being deleted. */
export async function agentPodOn(node: string, agentNamespace = 'nsdebug-system'): Promise<string> {
  const r = await execa(
    'kubectl',
    [
      '-n',
      agentNamespace,
      'get',
      'pods',
      '-l',
      'app.kubernetes.io/name=nsdebug-agent',
      '--field-selector',
      `spec.nodeName=${node}`,
      '-o',
      'json',
    ],
    { reject: false },
  );
  const pods =
    r.exitCode === 0
      ? (JSON.parse(String(r.stdout)) as { items: Array<{ metadata: { name: string; deletionTimestamp?: string } }> }).items
      : [];
  const pod = pods.find((p) => !p.metadata.deletionTimestamp);
  if (!pod) throw new Error(`no agent pod on node ${node}${r.exitCode ? `: ${String(r.stderr)}` : ''}`);
  return pod.metadata.name;
}
