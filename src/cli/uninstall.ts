// `kubectl nsdebug uninstall`: Options → Complete → Validate → Run, as install's: the flags
// become UninstallCommandOptions, checked without I/O, then src/kube/uninstall.ts deletes what
// install created and waits until it is gone.
import { parseDuration } from '../duration.js';
import type { KubeConfigOptions } from '../kube/config.js';
import { DEFAULT_INSTALL_TIMEOUT, installIO, realInstallCluster, validateTimeouts } from './install.js';
import { processIo, type CliIo } from './io.js';
import { connectionOptions, DEFAULT_AGENT_NAMESPACE, validateAgentNamespace, type KubeFlags } from './options.js';

/** `kubectl nsdebug uninstall` as parsed; -n/--namespace is the agent's. */
export interface UninstallFlags extends KubeFlags {
  wait?: boolean;
  timeout?: string;
}

export interface UninstallCommandOptions {
  namespace: string;
  wait: boolean;
  /** --timeout as typed; validate() checks it */
  timeout: string;
  kube: KubeConfigOptions;
}

export function completeUninstall(flags: UninstallFlags): UninstallCommandOptions {
  return {
    namespace: flags.namespace ?? DEFAULT_AGENT_NAMESPACE,
    wait: flags.wait !== false,
    timeout: flags.timeout ?? DEFAULT_INSTALL_TIMEOUT,
    kube: connectionOptions(flags),
  };
}

export function validateUninstall(opts: UninstallCommandOptions): void {
  validateAgentNamespace(opts.namespace);
  validateTimeouts(opts);
}

export async function runUninstall(flags: UninstallFlags, io: CliIo = processIo(), cluster = realInstallCluster): Promise<void> {
  const opts = completeUninstall(flags);
  validateUninstall(opts);
  const conn = await cluster.loadKubeConfig(opts.kube);
  const { uninstall } = await import('../kube/uninstall.js');
  await uninstall(
    { namespace: opts.namespace, wait: opts.wait, timeoutMs: parseDuration(opts.timeout) },
    await cluster.installClient(conn),
    installIO(io),
  );
}
