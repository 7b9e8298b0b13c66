// Readers for /proc/PID files. The agent runs with hostPID, so /proc is the host's PID namespace.
// Parsers take text and are pure, for unit tests over fixtures; readers add the file access.
import { readFileSync, readlinkSync } from 'node:fs';

export const PROC = '/proc';

/** Linux reports /proc/PID/stat times in USER_HZ, which is 100 on every architecture Linux ABI fixes. */
const USER_HZ = 100;

export interface ProcStatus {
  name: string;
  ppid: number;
  /** real UID and GID, as the reader's user namespace maps them */
  uid: number;
  gid: number;
  /** NSpid: the PID in each PID namespace from ours down to the process's own */
  nsPids: number[];
}

/** The "Key:\tvalue" lines of a /proc/PID/status text, by key. */
export function statusFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

export function parseStatus(text: string): ProcStatus {
  const fields = statusFields(text);
  const numbers = (key: string) =>
    (fields.get(key) ?? '')
      .split(/\s+/)
      .filter(Boolean)
      .map((n) => Number.parseInt(n, 10));
  const ppid = numbers('PPid')[0];
  const uid = numbers('Uid')[0];
  const gid = numbers('Gid')[0];
  const nsPids = numbers('NSpid');
  if (ppid === undefined || uid === undefined || gid === undefined) throw new Error('malformed /proc/PID/status');
  // Kernels before 4.1 have no NSpid line; the PID line is then the whole chain.
  return { name: fields.get('Name') ?? '', ppid, uid, gid, nsPids: nsPids.length ? nsPids : numbers('Pid') };
}

export interface ProcStat {
  comm: string;
  state: string;
  ppid: number;
  /** start time in clock ticks after boot */
  startTicks: number;
}

export function parseStat(text: string): ProcStat {
  // comm may hold spaces and parentheses: it ends at the last ')'.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error('malformed /proc/PID/stat');
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); starttime is field 22.
  const state = rest[0] ?? '?';
  const ppid = Number.parseInt(rest[1] ?? '', 10);
  const startTicks = Number.parseInt(rest[19] ?? '', 10);
  if (Number.isNaN(ppid) || Number.isNaN(startTicks)) throw new Error('malformed /proc/PID/stat');
  return { comm: text.slice(open + 1, close), state, ppid, startTicks };
}

/** Split a NUL-separated /proc file (cmdline, environ) into its strings. */
export function splitNul(text: string): string[] {
  const parts = text.split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

export const readStatus = (pid: number) => parseStatus(readFileSync(`${PROC}/${pid}/status`, 'utf8'));
export const readStat = (pid: number) => parseStat(readFileSync(`${PROC}/${pid}/stat`, 'utf8'));
export const readCmdline = (pid: number) => splitNul(readFileSync(`${PROC}/${pid}/cmdline`, 'utf8'));
export const readEnviron = (pid: number) => splitNul(readFileSync(`${PROC}/${pid}/environ`, 'utf8'));

/** The namespace identity (e.g. "pid:[4026531836]") of pid, or of this process for 'self'. */
export const namespaceId = (pid: number | 'self', kind: string) => readlinkSync(`${PROC}/${pid}/ns/${kind}`);

/** Boot time in ms since the epoch, to turn start ticks into dates. */
export function bootTimeMs(statText = readFileSync(`${PROC}/stat`, 'utf8')): number {
  const match = /^btime (\d+)$/m.exec(statText);
  if (!match?.[1]) throw new Error('no btime in /proc/stat');
  return Number.parseInt(match[1], 10) * 1000;
}

export const startTimeMs = (startTicks: number, bootMs: number) => bootMs + (startTicks * 1000) / USER_HZ;

/** Whether pid exists now (a zombie counts). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
