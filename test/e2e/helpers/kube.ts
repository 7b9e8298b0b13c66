// Shared helpers for e2e suites: the real kubectl (/usr/bin/kubectl or the first on PATH)
// against the cluster test/e2e/run.sh brought up (KUBECONFIG, KUBECONFIG_LIMITED,
// CONTAINERD_ADDRESS in the environment). Objects a test creates should carry the label
// E2E_LABEL, so run.sh can delete them afterwards.
import { execa, type Options, type Result } from 'execa';

export const E2E_LABEL = 'nsdebug.test/e2e';

export interface ClusterEnv {
  kubeconfig: string;
  kubeconfigLimited: string;
  containerdAddress: string;
}

/** The cluster's coordinates, or a clear error when the suite was not started by run.sh. */
export function clusterEnv(): ClusterEnv {
  const { KUBECONFIG, KUBECONFIG_LIMITED, CONTAINERD_ADDRESS } = process.env;
  if (!KUBECONFIG || !KUBECONFIG_LIMITED || !CONTAINERD_ADDRESS) {
    throw new Error(
      'KUBECONFIG, KUBECONFIG_LIMITED and CONTAINERD_ADDRESS must be set: run the e2e tier through test/e2e/run.sh, which brings the cluster up',
    );
  }
  return { kubeconfig: KUBECONFIG, kubeconfigLimited: KUBECONFIG_LIMITED, containerdAddress: CONTAINERD_ADDRESS };
}

/** kubectl ARGS; never throws on a non-zero exit (check exitCode). */
export function kubectl(args: string[], opts: Options = {}): Promise<Result> {
  return execa('kubectl', args, { reject: false, timeout: 120_000, ...opts }) as Promise<Result>;
}

/** The agent image the e2e run built and imported into every node (test/cluster/images.sh). */
export const AGENT_IMAGE = process.env.NSDEBUG_AGENT_IMAGE ?? 'nsdebug.local/agent:dev';
/** How long a rollout of the agent over every node may take: VM nodes under emulation take a minute each. */
export const ROLLOUT_MS = 5 * 60_000;
/** A suite's set-up that installs the agent: the install's wait, and two minutes for the rest. */
export const INSTALL_SETUP_MS = ROLLOUT_MS + 2 * 60_000;

/**
 * `kubectl nsdebug install --image AGENT_IMAGE FLAGS` and its wait for the rollout; throws with
 * the install's own last words. kubectl is given longer than the install's --timeout, so a slow
 * rollout ends in the install's message, not in a kill without one.
 */
export async function installAgent(...flags: string[]): Promise<void> {
  const r = await kubectl(['nsdebug', 'install', '--image', AGENT_IMAGE, ...flags, '--timeout', `${ROLLOUT_MS / 1000}s`], {
    timeout: ROLLOUT_MS + 30_000,
  });
  if (r.exitCode !== 0) throw new Error(`kubectl nsdebug install ${flags.join(' ')}: exit ${r.exitCode}: ${String(r.stderr)}`);
}

/** kubectl ARGS -o json, parsed; throws with kubectl's stderr on failure. */
export async function kubectlJson<T>(args: string[], opts: Options = {}): Promise<T> {
  const r = await kubectl([...args, '-o', 'json'], opts);
  if (r.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')}: exit ${r.exitCode}: ${String(r.stderr)}`);
  return JSON.parse(String(r.stdout)) as T;
}

/** Polls probe every intervalMs until it returns a value other than undefined/false, or throws after timeoutMs with the last value. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 120_000,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`,
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface PodJson {
  metadata: { name: string; namespace: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { nodeName?: string; containers: Array<{ name: string; image: string }> };
  status: {
    phase: string;
    podIP?: string;
    qosClass?: string;
    conditions?: Array<{ type: string; status: string }>;
    containerStatuses?: Array<{
      name: string;
      ready: boolean;
      restartCount: number;
      containerID?: string;
      state: { running?: object; waiting?: { reason?: string }; terminated?: { reason?: string; exitCode: number; containerID?: string } };
      lastState: { terminated?: { reason?: string; exitCode: number } };
    }>;
  };
}

export const isReady = (pod: PodJson): boolean => pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/**
 * A busybox pod that runs script once (restartPolicy Never, or Always for a crash loop) and
 * passes PodSecurity `restricted`, labelled for cleanup.
 */
export interface BusyboxPodOptions {
  memory?: string;
  restart?: 'Never' | 'Always';
  /** runAsUser and runAsGroup (default 65534) */
  user?: number;
  supplementalGroups?: number[];
  /** emptyDir volumes by name → mount path */
  emptyDirs?: Record<string, string>;
}

export function busyboxPod(name: string, namespace: string, script: string, opts: BusyboxPodOptions = {}) {
  const user = opts.user ?? 65534;
  const dirs = Object.entries(opts.emptyDirs ?? {});
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { [E2E_LABEL]: 'true' } },
    spec: {
      restartPolicy: opts.restart ?? 'Never',
      terminationGracePeriodSeconds: 0,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: user,
        runAsGroup: user,
        ...(opts.supplementalGroups ? { supplementalGroups: opts.supplementalGroups } : {}),
        seccompProfile: { type: 'RuntimeDefault' },
      },
      ...(dirs.length ? { volumes: dirs.map(([volume]) => ({ name: volume, emptyDir: {} })) } : {}),
      containers: [
        {
          name: 'app',
          image: 'nsdebug.test/busybox:1',
          imagePullPolicy: 'Never',
          command: ['sh', '-c', script],
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          ...(opts.memory ? { resources: { limits: { memory: opts.memory }, requests: { memory: opts.memory } } } : {}),
          ...(dirs.length ? { volumeMounts: dirs.map(([volume, mountPath]) => ({ name: volume, mountPath })) } : {}),
        },
      ],
    },
  };
}

/** Wait until the pod's first container crashed at least once and waits in back-off for its next start. */
export function waitForBackOff(namespace: string, pod: string, timeoutMs?: number) {
  return waitFor(
    `${pod} in back-off after a crash`,
    async () => {
      const s = (await kubectlJson<PodJson>(['-n', namespace, 'get', 'pod', pod])).status.containerStatuses?.[0];
      if ((s?.restartCount ?? 0) >= 1 && s?.state.waiting) return s;
      // what the timeout's message says, when kubelet never gets there
      throw new Error(`restarts ${s?.restartCount ?? '-'}, state ${JSON.stringify(s?.state ?? null)}`);
    },
    timeoutMs,
  );
}
