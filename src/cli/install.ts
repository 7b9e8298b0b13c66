// `kubectl nsdebug install`: Options → Complete → Validate → Run, as the session's: the flags
// become InstallCommandOptions, checked without I/O, then src/kube/install.ts applies deploy/ and
// waits for the agent. uninstall shares the cluster factories and the output.
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
}

export interface InstallCommandOptions {
  namespace: string;
  image?: string;
  dryRun: boolean;
  wait: boolean;
  /** --timeout as typed; validate() checks it */
  timeout: string;
  sessionAuth: boolean;
  kube: KubeConfigOptions;
}

export function completeInstall(flags: InstallFlags): InstallCommandOptions {
  return {
    namespace: flags.namespace ?? DEFAULT_AGENT_NAMESPACE,
    ...(flags.image !== undefined ? { image: flags.image } : {}),
    dryRun: flags['dry-run'] === true,
    wait: flags.wait !== false,
    timeout: flags.timeout ?? DEFAULT_INSTALL_TIMEOUT,
    sessionAuth: flags['session-auth'] === true,
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
    },
    await cluster.installClient(conn),
    installIO(io),
  );
}
