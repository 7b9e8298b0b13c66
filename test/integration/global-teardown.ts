// Integration tier: stop the tier's containerd and clean up everything it made: every task
// and container (so every pod), mounts, cgroups, the bridge, CNI's iptables rules, its
// directory (see test/support/containerd.sh stop).
// NSDEBUG_IT_KEEP=1 leaves containerd and its pods running for inspection; stop it later
// with `bash test/support/containerd.sh stop /tmp/nsdebug-it --purge`.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** Same key as in global-setup.ts (not imported: jest loads these files as CommonJS). */
const LOCK_HOLDER = '__nsdebugIntegrationLock';

function releaseLock(): void {
  const holder = (globalThis as Record<string, unknown>)[LOCK_HOLDER] as ChildProcess | undefined;
  holder?.stdin?.end();
  delete (globalThis as Record<string, unknown>)[LOCK_HOLDER];
}

interface ProjectConfig {
  rootDir: string;
}

export default async function globalTeardown(_globalConfig: unknown, projectConfig: ProjectConfig): Promise<void> {
  try {
    const dir = process.env.NSDEBUG_IT_DIR;
    if (!dir || !process.env.CONTAINERD_ADDRESS) return; // setup did not get as far as starting containerd
    if (process.env.NSDEBUG_IT_KEEP === '1') {
      process.stderr.write(`\nintegration: NSDEBUG_IT_KEEP=1, containerd left running at ${process.env.CONTAINERD_ADDRESS}\n`);
      return;
    }
    execFileSync('bash', [join(projectConfig.rootDir, 'test', 'support', 'containerd.sh'), 'stop', dir, '--purge'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  } finally {
    releaseLock();
  }
}
