// The session's confinement: what `kubectl exec` would give a process in the target. The target
// process's own credentials, capability sets, no_new_privs, seccomp filters and LSM label, read
// from /proc/PID of the target (never from the pod spec), are handed to the native library,
// which takes them right before exec (apply_confinement() in native/libnsdebug.c).
// Parsers are pure, for unit tests over fixtures; readTargetConfinement adds the file access.
import { readFileSync } from 'node:fs';

import { ExitCode, type SessionUser } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { NativeError, type Confinement, type NativeLibrary } from '../native/libnsdebug.js';
import { PROC, statusFields } from './procfs.js';
import { compileSeccomp, type OciSeccomp } from './seccomp.js';

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
  const fields = statusFields(text);
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
function readLsmLabel(pid: number | 'self'): string | undefined {
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
      seccompFilters = await oneTracerAtATime(pid, () => native.seccompFilters(pid));
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

/** Copies in flight, by PID: a process has one tracer at a time, so a second copy would get EPERM. */
const tracing = new Map<number, Promise<unknown>>();

/** Run copy once every earlier copy of pid's filters (concurrent sessions on one target) is done. */
async function oneTracerAtATime<T>(pid: number, copy: () => Promise<T>): Promise<T> {
  const before = tracing.get(pid) ?? Promise.resolve();
  const mine = before.then(copy, copy);
  const settled = mine.then(
    () => undefined,
    () => undefined,
  );
  tracing.set(pid, settled);
  try {
    return await mine;
  } finally {
    if (tracing.get(pid) === settled) tracing.delete(pid);
  }
}

/** Capability names by number, as <linux/capability.h> numbers them (0 … 40 in Linux 5.9+). */
export const CAPABILITY_NAMES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

/**
 * OCI capability names (e.g. CAP_NET_BIND_SERVICE) → a bit set (bit N: capability N). A name this
 * list does not know is left out, as runc leaves out names its kernel lacks: fewer capabilities,
 * never more. A value that is not a list of CAP_ names is an error.
 */
export function capabilityBits(names: unknown, where: string): bigint {
  if (names === undefined || names === null) return 0n;
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string' && /^CAP_[A-Z0-9_]{1,40}$/.test(n)))
    throw new Error(`${where} is not a list of capability names`);
  let bits = 0n;
  for (const name of names as string[]) {
    const cap = (CAPABILITY_NAMES as readonly string[]).indexOf(name);
    if (cap >= 0) bits |= 1n << BigInt(cap);
  }
  return bits;
}

/** One line of an OCI spec's linux.uidMappings or gidMappings. */
interface IdMapping {
  containerID?: unknown;
  hostID?: unknown;
  size?: unknown;
}

/** The part of an OCI runtime spec (config.json) a post-mortem session is confined by. */
interface OciSpecPart {
  process?: {
    user?: { uid?: unknown; gid?: unknown; additionalGids?: unknown };
    capabilities?: Record<'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient', unknown>;
    noNewPrivileges?: unknown;
    apparmorProfile?: unknown;
    selinuxLabel?: unknown;
  };
  linux?: {
    seccomp?: OciSeccomp;
    namespaces?: Array<{ type?: unknown }>;
    uidMappings?: IdMapping[];
    gidMappings?: IdMapping[];
  };
}

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xfffffffe;

/** An ID of the container's user namespace as the node sees it, through an OCI ID mapping. */
function hostId(id: number, mappings: IdMapping[] | undefined): number | undefined {
  for (const m of mappings ?? []) {
    if (!isId(m.containerID) || !isId(m.hostID) || !isId(m.size)) continue;
    if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
  }
  return undefined;
}

/**
 * A dead container's confinement from its OCI spec, as runc set it up before exec'ing the
 * container's process: process.user (uid, gid, additionalGids as the supplementary groups),
 * process.capabilities (each set by name), process.noNewPrivileges. The session takes the same
 * sets before its exec, so the kernel's exec rules turn them into what the container had.
 *
 * A container in a user namespace of its own: its IDs are translated to the node's through
 * linux.uidMappings/gidMappings, and it gets no capability at all (its capabilities were over its
 * own namespace; the session runs in the node's, where they would be real).
 *
 * Seccomp: the spec's linux.seccomp (an OCI profile: syscall names and rules) compiled to BPF
 * (src/agent/seccomp.ts); a profile that cannot be rebuilt faithfully refuses the session. The
 * LSM label (process.apparmorProfile, selinuxLabel) where the node has an LSM (lsmActive).
 */
export function ociConfinement(spec: unknown, lsmActive = nodeHasLsm()): Confinement {
  if (typeof spec !== 'object' || spec === null) throw new Error('the OCI spec is not an object');
  const { process: proc, linux } = spec as OciSpecPart;
  const user = proc?.user ?? {};
  const uid = user.uid ?? 0;
  const gid = user.gid ?? 0;
  if (!isId(uid) || !isId(gid)) throw new Error('the OCI spec has no valid process.user.uid/gid');
  const groups = user.additionalGids ?? [];
  if (!Array.isArray(groups) || !groups.every(isId)) throw new Error('the OCI spec has no valid process.user.additionalGids');
  const userNamespace = (linux?.namespaces ?? []).some((ns) => ns?.type === 'user');
  const mapped = (id: number, kind: 'uid' | 'gid') => {
    if (!userNamespace) return id;
    const host = hostId(id, kind === 'uid' ? linux?.uidMappings : linux?.gidMappings);
    if (host === undefined) throw new Error(`${kind} ${id} of the container is not mapped to the node (linux.${kind}Mappings)`);
    return host;
  };
  const caps = proc?.capabilities ?? ({} as Record<string, unknown>);
  const set = (name: 'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient') =>
    userNamespace ? 0n : capabilityBits(caps[name], `process.capabilities.${name}`);
  if (proc?.noNewPrivileges !== undefined && typeof proc.noNewPrivileges !== 'boolean')
    throw new Error('the OCI spec has a process.noNewPrivileges that is not a boolean');
  const [bounding, permitted, inheritable] = [set('bounding'), set('permitted'), set('inheritable')];
  const u = mapped(uid, 'uid');
  const g = mapped(gid, 'gid');
  return {
    uid: [u, u, u],
    gid: [g, g, g],
    groups: [...new Set((groups as number[]).map((id) => mapped(id, 'gid')))],
    capBounding: bounding,
    capPermitted: permitted,
    // capset(2) refuses an effective capability that is not permitted, and an ambient one that is
    // not both permitted and inheritable (runc's own spec validation refuses those specs)
    capEffective: set('effective') & permitted,
    capInheritable: inheritable,
    capAmbient: set('ambient') & permitted & inheritable,
    noNewPrivs: proc?.noNewPrivileges === true,
    seccompFilters: linux?.seccomp ? [compileSeccomp(linux.seccomp)] : [],
    ...(lsmActive && ociLsmExec(proc) ? { lsmExec: ociLsmExec(proc) } : {}),
  };
}

/** attr/exec for the spec's AppArmor profile or SELinux label, or undefined for none. */
function ociLsmExec(proc: OciSpecPart['process']): string | undefined {
  const { apparmorProfile, selinuxLabel } = proc ?? {};
  if (typeof apparmorProfile === 'string' && apparmorProfile && apparmorProfile !== 'unconfined') return `exec ${apparmorProfile}`;
  if (typeof selinuxLabel === 'string' && selinuxLabel) return selinuxLabel;
  return undefined;
}

/** Whether an LSM labels processes here: our own attr/current reads (EINVAL where none does). */
function nodeHasLsm(): boolean {
  return readLsmLabel('self') !== undefined;
}

/** pid's own IDs, groups and capabilities as the agent's namespaces see them: cp opens files with them. */
export function readTargetCredentials(pid: number): Confinement {
  return sessionConfinement(parseCredentials(readFileSync(`${PROC}/${pid}/status`, 'utf8')), undefined, { seccompFilters: [] });
}
