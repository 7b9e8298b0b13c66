// `nsdebug-agent info`: what this node offers sessions, checked for real. `--check` is the
// DaemonSet's readiness probe; `serve` logs the same checks at start.
import { closeSync, existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';

import { CONTRACT_VERSION, SESSION_PORT, type AgentCheck, type AgentInfo } from '../contract.js';
import { loadNativeLibrary } from '../native/libnsdebug.js';
import { packageRoot } from '../package.js';
import { formatTable } from '../text.js';
import { cgroupMounts, kubeletRoots, type CgroupMount } from './cgroups.js';
import { AUDIT_SOCKET } from './audit.js';
import { TOOLBOX_CANDIDATES } from './enter.js';
import { namespaceId, PROC } from './procfs.js';
import { SESSION_SOCKET } from './resident.js';
import { createSessionCgroup, removeSessionCgroup } from './session-cgroup.js';

const RUNTIME_SOCKETS: Array<[string, string]> = [
  ['containerd', '/run/containerd/containerd.sock'],
  ['cri-o', '/run/crio/crio.sock'],
  ['docker', '/run/cri-dockerd.sock'],
];

// Capabilities a session needs: setns/mount (SYS_ADMIN), /proc/PID/root of others (SYS_PTRACE), chroot.
const NEEDED_CAPS: Array<[number, string]> = [
  [21, 'CAP_SYS_ADMIN'],
  [19, 'CAP_SYS_PTRACE'],
  [18, 'CAP_SYS_CHROOT'],
  [1, 'CAP_DAC_OVERRIDE'],
];

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export function cgroupVersionOf(mounts: CgroupMount[]): string {
  const v1 = mounts.some((m) => m.version === 1);
  const v2 = mounts.some((m) => m.version === 2);
  return v1 && v2 ? 'hybrid' : v2 ? 'v2' : v1 ? 'v1' : 'none';
}

/** The kubelet's cgroup driver, from the name of its pod tree below any of its roots (kind's /kubelet too). */
export function cgroupDriverOf(mounts: CgroupMount[], roots: string[] = kubeletRoots()): string {
  for (const m of mounts) {
    for (const root of roots) {
      if (existsSync(join(m.path, root, 'kubepods.slice'))) return 'systemd';
      if (existsSync(join(m.path, root, 'kubepods'))) return 'cgroupfs';
    }
  }
  return 'unknown';
}

/** Effective capabilities from a /proc/PID/status text. */
export function effectiveCaps(statusText: string): bigint {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(statusText)?.[1];
  return hex ? BigInt(`0x${hex}`) : 0n;
}

async function check(name: string, probe: () => string | Promise<string>): Promise<AgentCheck> {
  try {
    return { name, ok: true, detail: await probe() };
  } catch (err) {
    return { name, ok: false, detail: (err as Error).message };
  }
}

/** Paths of the listening unix sockets in a /proc/net/unix text (flag __SO_ACCEPTCON). */
export function listeningUnixSockets(text: string): string[] {
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 8 && (parseInt(f[3] ?? '0', 16) & 0x10000) !== 0)
    .map((f) => f.slice(7).join(' '));
}

/** Ports listening on 127.0.0.1 or any address in a /proc/net/tcp text (state 0A, LISTEN). */
export function listeningLoopbackPorts(text: string): number[] {
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[3] === '0A' && /^(0100007F|00000000):/.test(f[1] ?? ''))
    .map((f) => parseInt(f[1]!.split(':')[1]!, 16));
}

/**
 * serve's listeners are up (read from /proc/net, so the probe opens no connection serve would
 * log): the readiness probe's last word, so a restarted agent is not Ready before it can serve.
 */
function serveListening(): string {
  const unix = listeningUnixSockets(readFileSync(`${PROC}/self/net/unix`, 'utf8'));
  const missing = [SESSION_SOCKET, AUDIT_SOCKET].filter((path) => !unix.includes(path));
  // serve opens the session port where the DaemonSet tells it its node (see serve.ts)
  const port = process.env.NSDEBUG_NODE_NAME ? SESSION_PORT : undefined;
  if (port && !listeningLoopbackPorts(readFileSync(`${PROC}/self/net/tcp`, 'utf8')).includes(port)) missing.push(`127.0.0.1:${port}`);
  if (missing.length) throw new Error(`serve is not listening on ${missing.join(', ')} (yet): sessions cannot start`);
  return `listening${port ? ` (session port ${port})` : ''}`;
}

/** What this node offers; with serving, whether serve answers too (not asked by serve itself at start). */
export async function collectInfo(opts: { serving?: boolean } = {}): Promise<AgentInfo> {
  const mounts = cgroupMounts();
  const hostRoot = existsSync(`${PROC}/1/root/run`) ? `${PROC}/1/root` : '';
  const runtime = RUNTIME_SOCKETS.find(([, sock]) => existsSync(hostRoot + sock) || existsSync(sock))?.[0] ?? 'unknown';
  const checks = await Promise.all([
    check('host PID namespace', () => {
      const own = namespaceId('self', 'pid');
      // The initial PID namespace has a fixed inode (PROC_PID_INIT_INO); else compare with PID 1's.
      if (own !== 'pid:[4026531836]' && own !== namespaceId(1, 'pid'))
        throw new Error('not in the host PID namespace: the pod needs hostPID: true');
      return 'visible';
    }),
    check('capabilities', () => {
      const caps = effectiveCaps(readFileSync(`${PROC}/self/status`, 'utf8'));
      const missing = NEEDED_CAPS.filter(([bit]) => (caps & (1n << BigInt(bit))) === 0n).map(([, name]) => name);
      if (missing.length) throw new Error(`missing ${missing.join(', ')}: the agent must run privileged`);
      return NEEDED_CAPS.map(([, name]) => name).join(', ');
    }),
    check('native library', () => {
      const native = loadNativeLibrary();
      // pidfd_open arrived in Linux 5.3; setns on a pidfd in 5.8.
      closeSync(native.pidfdOpen(process.pid));
      return 'loaded; pidfd_open works';
    }),
    check('cgroups', () => {
      if (mounts.length === 0) throw new Error('no cgroup hierarchy mounted');
      return `${cgroupVersionOf(mounts)}, driver ${cgroupDriverOf(mounts)}`;
    }),
    check('session cleanup', async () => {
      const session = createSessionCgroup();
      if (!session)
        throw new Error('cannot create a session cgroup (cgroup v2 not writable): backgrounded processes may outlive a session');
      await removeSessionCgroup(session);
      return session.killFd >= 0 ? 'cgroup.kill' : 'per-process kill (no cgroup.kill before Linux 5.14)';
    }),
    ...(opts.serving ? [check('serve', serveListening)] : []),
    check('toolbox', () => {
      const path = process.env.NSDEBUG_TOOLBOX ?? TOOLBOX_CANDIDATES.find((p) => existsSync(p));
      if (!path || !existsSync(path))
        throw new Error(`no static busybox at ${TOOLBOX_CANDIDATES.join(' or ')}: --tools and shell-less containers will not work`);
      return path;
    }),
  ]);
  return {
    version: packageVersion(),
    contractVersion: CONTRACT_VERSION,
    runtime,
    cgroupVersion: cgroupVersionOf(mounts),
    cgroupDriver: cgroupDriverOf(mounts),
    kernel: release(),
    nodejs: process.version,
    checks,
  };
}

export function formatInfo(info: AgentInfo): string {
  const head = `nsdebug-agent ${info.version} (contract ${info.contractVersion}), runtime ${info.runtime}, cgroup ${info.cgroupVersion}/${info.cgroupDriver}, kernel ${info.kernel}, node ${info.nodejs ?? 'unknown'}\n`;
  return (
    head +
    formatTable(
      ['CHECK', 'OK', 'DETAIL'],
      info.checks.map((c) => [c.name, c.ok ? 'yes' : 'NO', c.detail]),
    )
  );
}
