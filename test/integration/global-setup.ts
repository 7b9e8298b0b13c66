// Integration tier: start a private containerd (test/support/containerd.sh), build and import
// the test images (test/support/images.sh), and hand the address to the test files through
// the environment: CONTAINERD_ADDRESS (unix://…), NSDEBUG_IT_DIR, NSDEBUG_POD_LOG_ROOT.
// Needs root (CI runs as root). Directory: $NSDEBUG_IT_DIR, default /tmp/nsdebug-it; pod
// network $NSDEBUG_IT_SUBNET (10.99.0.0/16) on bridge $NSDEBUG_IT_BRIDGE (nsdbg-int0): set all
// three to run two integration tiers side by side.
//
// Runs of the tier that use the same directory are serialized by an flock on `${dir}.lock`
// held from here until global-teardown has cleaned up (a later run waits, printing who holds
// it); the lock is held by a child `flock … cat` that exits when jest does, however it ends.
//
// Jest loads this file (and global-teardown.ts) as CommonJS without moduleNameMapper, so it
// imports nothing from test/support: the shell scripts do all the work.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

interface ProjectConfig {
  rootDir: string;
}

function sh(script: string, args: string[]): string {
  // stderr (progress, errors) goes to the terminal; stdout is the script's answer.
  return execFileSync('bash', [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Key under which global-teardown finds the lock holder (setup and teardown share globals). */
export const LOCK_HOLDER = '__nsdebugIntegrationLock';

/** Takes an exclusive flock on `path`, held until the returned child's stdin is closed. */
async function takeLock(path: string, timeoutSeconds = 1800): Promise<ChildProcess> {
  const child = spawn('flock', ['--exclusive', '--timeout', String(timeoutSeconds), path, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waiting = setTimeout(
    () => process.stderr.write(`\nintegration: waiting for another run of the integration tier to finish (lock ${path})\n`),
    1000,
  );
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('error', (e) => reject(new Error(`cannot run flock (util-linux): ${e.message}`)));
      child.once('exit', (code) => reject(new Error(`could not lock ${path} within ${timeoutSeconds} s (flock exit ${code})`)));
    });
  } finally {
    clearTimeout(waiting);
  }
  child.removeAllListeners('exit');
  child.stdout!.destroy();
  // Do not keep jest alive; when jest exits, cat sees EOF and the lock goes with it.
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return child;
}

export default async function globalSetup(_globalConfig: unknown, projectConfig: ProjectConfig): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'The integration tier needs root: it starts containerd and runs real containers. ' +
        'Run it as root (CI does): sudo NODE_OPTIONS=--experimental-vm-modules npx jest --selectProjects integration',
    );
  }
  const support = join(projectConfig.rootDir, 'test', 'support');
  const dir = process.env.NSDEBUG_IT_DIR || '/tmp/nsdebug-it';
  (globalThis as Record<string, unknown>)[LOCK_HOLDER] = await takeLock(`${dir}.lock`);
  // A clean slate: whatever an interrupted earlier run left (pods, mounts, cgroups) goes first.
  sh(join(support, 'containerd.sh'), ['stop', dir, '--purge']);
  const t0 = Date.now();
  const out = sh(join(support, 'containerd.sh'), [
    'start',
    dir,
    ...(process.env.NSDEBUG_IT_SUBNET ? ['--subnet', process.env.NSDEBUG_IT_SUBNET] : []),
    ...(process.env.NSDEBUG_IT_BRIDGE ? ['--bridge', process.env.NSDEBUG_IT_BRIDGE] : []),
  ]);
  const address = out
    .trim()
    .split('\n')
    .pop()
    ?.replace(/^CONTAINERD_ADDRESS=/, '');
  if (!address?.startsWith('unix://')) throw new Error(`containerd.sh start printed no CONTAINERD_ADDRESS:\n${out}`);
  const t1 = Date.now();
  try {
    sh(join(support, 'images.sh'), [address]);
  } catch (e) {
    sh(join(support, 'containerd.sh'), ['stop', dir, '--purge']);
    throw e;
  }
  process.stderr.write(`\nintegration: containerd at ${address} (start ${t1 - t0} ms, images ${Date.now() - t1} ms)\n`);
  process.env.CONTAINERD_ADDRESS = address;
  process.env.NSDEBUG_IT_DIR = dir;
  process.env.NSDEBUG_POD_LOG_ROOT = join(dir, 'pod-logs');
}
