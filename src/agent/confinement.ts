// The session's confinement: what `kubectl exec` would give a process in the target. The target
// process's own credentials, capability sets, no_new_privs, seccomp filters and LSM label, read
// from /proc/PID of the target (never from the pod spec), are handed to the native library,
// which takes them right before exec (apply_confinement() in native/libnsdebug.c).
// Parsers are pure, for unit tests over fixtures; readTargetConfinement adds the file access.
import { readFileSync } from 'node:fs';

import { ExitCode, type SessionUser } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { NativeError, type Confinement, type NativeLibrary } from '../native/libnsdebug.js';
import { PROC } from './procfs.js';

/** The confinement lines of /proc/PID/status. */
export interface ProcessCredentials {
  /** real, effective, saved (the filesystem ID follows the effective one) */
  uid: [number, number, number];
  gid: [number, number, number];
  groups: number[];
  capInheritable: bigint;
  capPermitted: bigint;
  capEffective: bigint;
  capBounding: bigint;
  capAmbient: bigint;
  noNewPrivs: boolean;
  /** 0: none, 1: strict mode, 2: filters */
  seccomp: 0 | 1 | 2;
}

const ID = /^\d{1,10}$/;
const CAPS = /^[0-9a-f]{16}$/;

/** Parse the credential, capability, NoNewPrivs and Seccomp lines of a /proc/PID/status text. */
export function parseCredentials(text: string): ProcessCredentials {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const malformed = (key: string) =>
    new Error(`malformed /proc/PID/status: ${key} ${JSON.stringify((fields.get(key) ?? '(missing)').slice(0, 80))}`);
  const ids = (key: string, count?: number): number[] => {
    const words = (fields.get(key) ?? '').split(/\s+/).filter(Boolean);
    if ((count !== undefined && words.length !== count) || !words.every((w) => ID.test(w) && Number(w) <= 0xffffffff)) throw malformed(key);
    return words.map(Number);
  };
  // CapAmb (Linux 4.3), NoNewPrivs (4.10) and Seccomp (3.8, CONFIG_SECCOMP) may be absent: then none.
  const caps = (key: string, optional = false): bigint => {
    const value = fields.get(key);
    if (value === undefined && optional) return 0n;
    if (value === undefined || !CAPS.test(value)) throw malformed(key);
    return BigInt(`0x${value}`);
  };
  const flag = (key: string, max: number): number => {
    const value = fields.get(key) ?? '0';
    if (!/^\d$/.test(value) || Number(value) > max) throw malformed(key);
    return Number(value);
  };
  if (!fields.has('Groups')) throw malformed('Groups');
  const [ruid, euid, suid] = ids('Uid', 4) as [number, number, number];
  const [rgid, egid, sgid] = ids('Gid', 4) as [number, number, number];
  return {
    uid: [ruid, euid, suid],
    gid: [rgid, egid, sgid],
    groups: ids('Groups'),
    capInheritable: caps('CapInh'),
    capPermitted: caps('CapPrm'),
    capEffective: caps('CapEff'),
    capBounding: caps('CapBnd'),
    capAmbient: caps('CapAmb', true),
    noNewPrivs: flag('NoNewPrivs', 1) === 1,
    seccomp: flag('Seccomp', 2) as 0 | 1 | 2,
  };
}

/**
 * An ID as the namespace of a uid_map/gid_map text sees it ("inside outside count" lines), from
 * the host's value that /proc/PID/status shows us; undefined if the namespace does not map it.
 */
export function idInNamespace(hostId: number, mapText: string): number | undefined {
  for (const line of mapText.split('\n')) {
    const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
    if (inside === undefined || outside === undefined || count === undefined || Number.isNaN(count)) continue;
    if (hostId >= outside && hostId < outside + count) return inside + (hostId - outside);
  }
  return undefined;
}

/**
 * What to write to /proc/self/attr/exec for a target whose /proc/PID/attr/current reads
 * `current`: AppArmor's "NAME (MODE)" becomes "exec NAME" (change_onexec), an SELinux context
 * is written as it is; unconfined or empty: nothing.
 */
export function lsmExecLabel(current: string): string | undefined {
  const label = current.replace(/\0/g, '').trim();
  const apparmor = /^(.+) \((enforce|complain|kill|user|unconfined|prompt|mixed)\)$/.exec(label);
  const name = apparmor ? apparmor[1] : label;
  if (!name || name === 'unconfined') return undefined;
  return apparmor ? `exec ${name}` : name;
}

/**
 * The confinement of a session as `user` (default: the target's own), from the target's
 * credentials: never a capability outside the target's bounding set; a non-root --user gets no
 * permitted, effective or ambient capabilities, --user 0 the target's sets.
 */
export function sessionConfinement(
  creds: ProcessCredentials,
  user: SessionUser | undefined,
  extras: { seccompFilters: Buffer[]; lsmExec?: string },
): Confinement {
  const asUser = user && { uid: user.uid, gid: user.gid ?? user.uid };
  const bounded = (caps: bigint) => caps & creds.capBounding;
  const root = !asUser || asUser.uid === 0;
  return {
    uid: asUser ? [asUser.uid, asUser.uid, asUser.uid] : creds.uid,
    gid: asUser ? [asUser.gid, asUser.gid, asUser.gid] : creds.gid,
    groups: asUser ? [] : creds.groups,
    capBounding: creds.capBounding,
    capPermitted: root ? bounded(creds.capPermitted) : 0n,
    capEffective: root ? bounded(creds.capEffective) : 0n,
    capInheritable: bounded(creds.capInheritable),
    capAmbient: root ? bounded(creds.capAmbient) : 0n,
    noNewPrivs: creds.noNewPrivs,
    seccompFilters: extras.seccompFilters,
    ...(extras.lsmExec ? { lsmExec: extras.lsmExec } : {}),
  };
}

/** /proc/PID/attr/current, or undefined where no LSM provides it (EINVAL: this machine, for one). */
function readLsmLabel(pid: number): string | undefined {
  try {
    return readFileSync(`${PROC}/${pid}/attr/current`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The confinement of a session in pid's namespaces, read from pid now. userNamespace: the
 * session joins pid's user namespace, where its IDs are translated. A target with a seccomp
 * filter that cannot be copied fails the session: it never runs less confined than the target.
 */
export async function readTargetConfinement(
  pid: number,
  native: NativeLibrary,
  userNamespace: boolean,
  user?: SessionUser,
): Promise<Confinement> {
  const creds = parseCredentials(readFileSync(`${PROC}/${pid}/status`, 'utf8'));
  let keepGroups = false;
  if (userNamespace) {
    const map = (kind: 'uid' | 'gid') => readFileSync(`${PROC}/${pid}/${kind}_map`, 'utf8');
    const [uidMap, gidMap] = [map('uid'), map('gid')];
    const mapped = (ids: number[], kind: 'uid' | 'gid', text: string) =>
      ids.map((id) => {
        const inside = idInNamespace(id, text);
        if (inside === undefined)
          throw new NsdebugError(`${kind} ${id} of pid ${pid} is not mapped in its user namespace`, ExitCode.ENTER_FAILED);
        return inside;
      });
    creds.uid = mapped(creds.uid, 'uid', uidMap) as ProcessCredentials['uid'];
    creds.gid = mapped(creds.gid, 'gid', gidMap) as ProcessCredentials['gid'];
    // Groups the namespace does not map cannot be set from inside it; where it denies setgroups
    // (an unprivileged `unshare -r`), the session keeps the groups it arrives with.
    keepGroups = readFileSync(`${PROC}/${pid}/setgroups`, 'utf8').trim() === 'deny';
    creds.groups = creds.groups.map((g) => idInNamespace(g, gidMap)).filter((g): g is number => g !== undefined);
  }
  if (creds.seccomp === 1) {
    throw new NsdebugError(
      `pid ${pid} runs in seccomp strict mode, which no shell or command can run under; use --privileged`,
      ExitCode.ENTER_FAILED,
    );
  }
  let seccompFilters: Buffer[] = [];
  if (creds.seccomp === 2) {
    try {
      seccompFilters = await native.seccompFilters(pid);
    } catch (err) {
      if (!(err instanceof NativeError)) throw err;
      throw new NsdebugError(`${err.message}; a session never runs without the target's seccomp filter`, ExitCode.ENTER_FAILED);
    }
    if (!seccompFilters.length) throw new NsdebugError(`pid ${pid} has a seccomp filter but none could be copied`, ExitCode.ENTER_FAILED);
  }
  const label = readLsmLabel(pid);
  const lsmExec = label === undefined ? undefined : lsmExecLabel(label);
  const confinement = sessionConfinement(creds, user, { seccompFilters, ...(lsmExec ? { lsmExec } : {}) });
  return keepGroups ? { ...confinement, groups: undefined } : confinement;
}

/** pid's own IDs, groups and capabilities as the agent's namespaces see them: cp opens files with them. */
export function readTargetCredentials(pid: number): Confinement {
  return sessionConfinement(parseCredentials(readFileSync(`${PROC}/${pid}/status`, 'utf8')), undefined, { seccompFilters: [] });
}
