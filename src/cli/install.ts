// `kubectl nsdebug install`: Options → Complete → Validate → Run, as the session's: the flags
// become InstallCommandOptions, checked without I/O, then src/kube/install.ts applies deploy/ and
// waits for the agent. uninstall shares the cluster factories and the output.
import { DEFAULT_RECORDING_DIR, type RecordingSettings } from '../contract.js';
import { parseDuration } from '../duration.js';
import { usageError } from '../errors.js';
import { parseRequestTimeout, type KubeConfigOptions, type KubeConnection } from '../kube/config.js';
import { isImageReference } from '../kube/image-ref.js';
import type { InstallClient, InstallIO } from '../kube/install.js';
import { processIo, type CliIo } from './io.js';
import { connectionOptions, DEFAULT_AGENT_NAMESPACE, validateAgentNamespace, type KubeFlags } from './options.js';

/** How long install and uninstall wait without --timeout. */
export const DEFAULT_INSTALL_TIMEOUT = '2m';

/** `kubectl nsdebug install` as parsed; -n/--namespace is the agent's. */
export interface InstallFlags extends KubeFlags {
  image?: string;
  'dry-run'?: boolean;
  wait?: boolean;
  timeout?: string;
  'session-auth'?: boolean;
  record?: string;
  'record-dir'?: string;
  'record-max-size'?: string;
  'record-input'?: boolean;
  'record-scope'?: string;
}

export interface InstallCommandOptions {
  namespace: string;
  image?: string;
  dryRun: boolean;
  wait: boolean;
  /** --timeout as typed; validate() checks it */
  timeout: string;
  sessionAuth: boolean;
  recording?: RecordingSettings;
  kube: KubeConfigOptions;
}

/** Sizes as Kubernetes quantities: 512Mi, 2Gi, 1G, or bytes. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(text);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, K: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m?.[2] ?? ''] ?? 1;
  const bytes = m ? Number(m[1]) * unit : NaN;
  if (!Number.isSafeInteger(bytes)) throw usageError(`${flag} must be a size like 512Mi or 2Gi, not "${text}"`);
  return bytes;
}

export function completeInstall(flags: InstallFlags): InstallCommandOptions {
  return {
    namespace: flags.namespace ?? DEFAULT_AGENT_NAMESPACE,
    ...(flags.image !== undefined ? { image: flags.image } : {}),
    dryRun: flags['dry-run'] === true,
    wait: flags.wait !== false,
    timeout: flags.timeout ?? DEFAULT_INSTALL_TIMEOUT,
    sessionAuth: flags['session-auth'] === true,
    ...(flags.record !== undefined && flags.record !== 'off'
      ? {
          recording: {
            to: flags.record as RecordingSettings['to'],
            dir: flags['record-dir'] ?? DEFAULT_RECORDING_DIR,
            maxBytes: parseSize(flags['record-max-size'] ?? '1Gi', '--record-max-size'),
            input: flags['record-input'] === true,
            scope: (flags['record-scope'] ?? 'all') as RecordingSettings['scope'],
          },
        }
      : {}),
    kube: connectionOptions(flags),
  };
}

export function validateImage(image: string): void {
  if (!isImageReference(image))
    throw usageError(`--image must be an image reference like registry.example/nsdebug-agent:0.1.0, not "${image}"`);
}

/** --timeout, then kubectl's --request-timeout, as install and uninstall take them. */
export function validateTimeouts(opts: Pick<InstallCommandOptions, 'timeout' | 'kube'>): void {
  parseDuration(opts.timeout);
  if (opts.kube.requestTimeout !== undefined) parseRequestTimeout(opts.kube.requestTimeout);
}

export function validateInstall(opts: InstallCommandOptions): void {
  validateAgentNamespace(opts.namespace);
  if (opts.image !== undefined) validateImage(opts.image);
  validateTimeouts(opts);
  const rec = opts.recording;
  if (!rec) return;
  if (rec.to !== 'hostpath' && rec.to !== 'log') throw usageError(`--record must be off, hostpath or log, not "${String(rec.to)}"`);
  if (rec.scope !== 'all' && rec.scope !== 'labelled')
    throw usageError(`--record-scope must be all or labelled, not "${String(rec.scope)}"`);
  // a node directory the agent mounts read-write: a plain absolute path, nothing the kubelet would resolve elsewhere
  if (!/^\/[A-Za-z0-9._/-]{1,255}$/.test(rec.dir) || rec.dir.split('/').includes('..') || rec.dir === '/')
    throw usageError(`--record-dir must be an absolute directory path on the nodes, not "${rec.dir}"`);
  if (rec.maxBytes < 2 ** 20) throw usageError('--record-max-size must be at least 1Mi');
}

/** The cluster install and uninstall talk to, as factories so tests can pass fakes. */
export interface InstallCluster {
  loadKubeConfig(opts: KubeConfigOptions): Promise<KubeConnection>;
  installClient(conn: KubeConnection): Promise<InstallClient>;
}

export const realInstallCluster: InstallCluster = {
  loadKubeConfig: async (opts) => (await import('../kube/config.js')).loadKubeConfig(opts),
  installClient: async (conn) => (await import('../kube/install.js')).createInstallClient(conn),
};

/** Results on stdout; progress on stderr only when stderr is a terminal. */
export function installIO(io: Pick<CliIo, 'stdout' | 'stderr' | 'facts'>): InstallIO {
  return {
    out: (line) => void io.stdout.write(`${line}\n`),
    ...(io.facts.stderrIsTTY ? { progress: (line: string) => void io.stderr.write(`${line}\n`) } : {}),
  };
}

export async function runInstall(flags: InstallFlags, io: CliIo = processIo(), cluster = realInstallCluster): Promise<void> {
  const opts = completeInstall(flags);
  validateInstall(opts);
  const conn = await cluster.loadKubeConfig(opts.kube);
  const { install } = await import('../kube/install.js');
  await install(
    {
      namespace: opts.namespace,
      ...(opts.image !== undefined ? { image: opts.image } : {}),
      dryRun: opts.dryRun,
      wait: opts.wait,
      timeoutMs: parseDuration(opts.timeout),
      sessionAuth: opts.sessionAuth,
      ...(opts.recording ? { recording: opts.recording } : {}),
    },
    await cluster.installClient(conn),
    installIO(io),
  );
}
