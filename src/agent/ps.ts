// `nsdebug-agent ps`: the container's processes, each with its PID on the host and in every
// nested PID namespace (NSpid) — the same process, two PIDs.
import { closeSync, constants, openSync } from 'node:fs';

import type { ProcessInfo } from '../contract.js';
import type { NativeLibrary } from '../native/libnsdebug.js';
import { formatTable } from '../text.js';
import { readContainerFile } from './container-file.js';
import { bootTimeMs, PROC, readCmdline, readStat, readStatus, startTimeMs } from './procfs.js';
import { resolveContainer } from './resolve.js';

const PASSWD_MAX_BYTES = 4 << 20;

/** uid → name from an /etc/passwd text. */
export function parsePasswd(text: string): Map<number, string> {
  const users = new Map<number, string>();
  for (const line of text.split('\n')) {
    const [name, , uid] = line.split(':');
    if (name && uid && /^\d+$/.test(uid)) users.set(Number(uid), name);
  }
  return users;
}

/** The container's own user names, from its /etc/passwd (whatever the container made of it). */
function containerUsers(native: NativeLibrary, pid: number): Map<number, string> {
  let rootFd: number | undefined;
  try {
    rootFd = openSync(`${PROC}/${pid}/root`, constants.O_RDONLY | constants.O_DIRECTORY);
    return parsePasswd(readContainerFile(native, rootFd, '/etc/passwd', PASSWD_MAX_BYTES).toString('utf8'));
  } catch {
    // none (distroless), or not a file nsdebug reads (a FIFO, a device, too large): numeric users
    return new Map();
  } finally {
    if (rootFd !== undefined) closeSync(rootFd);
  }
}

export function listProcesses(containerId: string, podUid: string | undefined, native: NativeLibrary): ProcessInfo[] {
  const target = resolveContainer(containerId, podUid);
  const bootMs = bootTimeMs();
  const users = containerUsers(native, target.pid);
  const baseDepth = readStatus(target.pid).nsPids.length;
  const processes: ProcessInfo[] = [];
  for (const pid of target.pids) {
    try {
      const status = readStatus(pid);
      const stat = readStat(pid);
      const argv = readCmdline(pid);
      processes.push({
        hostPid: pid,
        nsPids: status.nsPids,
        nestLevel: status.nsPids.length - baseDepth,
        ppid: status.ppid,
        uid: status.uid,
        user: users.get(status.uid) ?? String(status.uid),
        state: stat.state,
        startTime: new Date(startTimeMs(stat.startTicks, bootMs)).toISOString(),
        command: argv.length ? argv.join(' ') : `[${stat.comm}]`,
      });
    } catch {
      // exited while listing
    }
  }
  return processes.sort((a, b) => a.hostPid - b.hostPid);
}

/** Columns like ps(1): host PID, the PID inside the container, deeper PIDs when nested. */
export function formatProcessTable(processes: ProcessInfo[]): string {
  const rows = processes.map((p) => [
    String(p.hostPid),
    String(p.nsPids[p.nsPids.length - 1 - p.nestLevel] ?? p.nsPids.at(-1)),
    p.nestLevel > 0 ? p.nsPids.slice(-p.nestLevel).join('>') : '-',
    p.user,
    p.state,
    p.startTime.replace(/\.\d+Z$/, 'Z'),
    p.command,
  ]);
  return formatTable(['HOST PID', 'PID', 'NESTED PID', 'USER', 'STAT', 'START', 'COMMAND'], rows);
}
