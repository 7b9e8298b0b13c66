// The CLI ↔ agent contract: the argv the CLI runs in the agent pod, the exit codes both sides
// use, and the JSON the agent prints. Versioned: an agent refuses a contract version it does not
// know, naming both versions, so a CLI and an agent from different releases fail in one clear line.
import { createHash } from 'node:crypto';

import { usageError } from './errors.js';

/**
 * Bumped whenever the argv or JSON shapes below change incompatibly, or what they mean does.
 * 2: sessions are confined like their target (--privileged, --user): a CLI must never reach an
 * agent that would silently run its sessions with the agent's power.
 * 3: every session speaks the framed protocol below (with heartbeats and a stdin window), over
 * exec stdio (`enter --framed`) as over the session port, whose HELLO names this version.
 * 4: cp copies trees (a tar stream each way) and out of a dead container's last filesystem.
 */
export const CONTRACT_VERSION = 4;

/** Path of the agent executable inside the agent image. */
export const AGENT_EXECUTABLE = 'nsdebug-agent';

/** Namespace kinds in the order the kernel wants them joined (see native/libnsdebug.c). */
export const NAMESPACE_KINDS = ['user', 'cgroup', 'ipc', 'uts', 'net', 'pid', 'mnt', 'time'] as const;
export type NamespaceKind = (typeof NAMESPACE_KINDS)[number];

/** --ns as typed (both sides' flag): a comma-separated list of NAMESPACE_KINDS, each once. */
export function parseNamespaceKinds(list: string): NamespaceKind[] {
  const kinds = list.split(',').map((k) => k.trim());
  const unknown = kinds.find((k) => !(NAMESPACE_KINDS as readonly string[]).includes(k));
  if (unknown !== undefined) {
    throw usageError(
      `--ns: ${unknown === '' ? 'empty namespace kind' : `unknown namespace kind "${unknown}"`}; use a comma-separated list of ${NAMESPACE_KINDS.join(', ')}`,
    );
  }
  return [...new Set(kinds)] as NamespaceKind[];
}

/**
 * Exit codes. 0–255 otherwise belong to the remote command (as with `kubectl exec`), so nsdebug's
 * own failures use a small documented block, like env(1) and nsenter(1) use 125–127.
 */
export const ExitCode = {
  OK: 0,
  /** a flag, argument or value is invalid; nothing was run */
  USAGE: 64,
  /** the pod, container or process was not found */
  NOT_FOUND: 65,
  /** the user may not do this (RBAC, access review) */
  FORBIDDEN: 66,
  /** no ready agent on the target's node */
  AGENT_UNAVAILABLE: 67,
  /** CLI and agent speak different contract versions */
  CONTRACT_MISMATCH: 68,
  /** joining the target's namespaces or starting the command failed */
  ENTER_FAILED: 69,
  /** the target container is not running */
  NOT_RUNNING: 70,
  /** the API server could not be reached or timed out */
  API_UNREACHABLE: 71,
  /** a bug or an unexpected condition in nsdebug itself */
  INTERNAL: 72,
  /** cp: the file could not be read or written (read-only file system, a directory, no space…) */
  COPY_FAILED: 73,
  /** the agent ended the session before its command ended: it is stopping, the session was revoked or killed, or it reached its maximum lifetime */
  SESSION_ENDED: 74,
  /** the connection to the agent broke or went silent mid-session; the agent ends the session's processes */
  CONNECTION_LOST: 75,
  /** install/status: the agent runs, but some nodes' agents are not ready (the rest can host sessions) */
  DEGRADED: 76,
  /** the command was found but could not be executed (as in shells) */
  COMMAND_NOT_EXECUTABLE: 126,
  /** the command was not found inside the target (as in shells) */
  COMMAND_NOT_FOUND: 127,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A process of the target container, as `nsdebug-agent ps -o json` prints it (one array). */
export interface ProcessInfo {
  /** PID in the host (agent's) PID namespace */
  hostPid: number;
  /** NSpid chain from /proc/PID/status: [host, container, nested…]; last is the innermost */
  nsPids: number[];
  /** PID namespace nesting depth below the container's (0 = the container's own) */
  nestLevel: number;
  ppid: number;
  uid: number;
  user: string;
  /** one-letter state from /proc/PID/stat (R, S, D, Z, T…) */
  state: string;
  /** start time, ISO 8601 */
  startTime: string;
  /** argv joined with spaces, or [comm] for kernel-less argv (zombies) */
  command: string;
}

/** --user UID[:GID]: the session runs as another user inside the target. */
export interface SessionUser {
  uid: number;
  /** default: the UID's number */
  gid?: number;
}

/** "UID[:GID]" (numbers, 0 to 4294967294: -1 means "unchanged" to the kernel) → SessionUser; undefined if it is not one. */
export function parseSessionUser(text: string): SessionUser | undefined {
  const match = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(text);
  if (!match) return undefined;
  const [uid, gid] = [Number(match[1]), match[2] === undefined ? undefined : Number(match[2])];
  if (uid > 0xfffffffe || (gid !== undefined && gid > 0xfffffffe)) return undefined;
  return gid === undefined ? { uid } : { uid, gid };
}

export const formatSessionUser = (user: SessionUser) => (user.gid === undefined ? `${user.uid}` : `${user.uid}:${user.gid}`);

/**
 * What a session asks of the agent (`enter`). The CLI builds it once, from its flags and the
 * target it resolved; it travels as argv (exec into the agent pod, {@link agentArgv}) or as a
 * DebugSession ({@link debugSessionAsk}), and the agent decodes either form back into this type
 * and validates it once (src/agent/request.ts) before anything runs.
 */
export interface SessionRequest {
  /** the container instance to enter; with wait, the instance to skip ("" when none ran yet) */
  containerId: string;
  podUid?: string;
  /** "namespace/name" and the container's name: recorded in the agent's audit line */
  pod?: string;
  container?: string;
  namespaces?: NamespaceKind[];
  /** run the command with nsdebug's toolbox (busybox), for a container without a shell */
  tools: boolean;
  tty: boolean;
  /** a private read-only copy of the container's mounts, no new privileges */
  readOnly?: boolean;
  /** enter the process with this PID inside the container (maybe in a nested PID namespace) */
  process?: number;
  /**
   * keep the agent's privileges (root, all its capabilities, no seccomp) instead of the target's
   * confinement; audited, never through a DebugSession
   */
  privileged?: boolean;
  /** run as this user inside the target, never with more capabilities than the target's bounding set */
  user?: SessionUser;
  /** the container has exited: its last filesystem, read-only, in the pod's network */
  postmortem?: boolean;
  /** wait up to this many seconds for the container's next start (needs podUid and container), then enter it */
  waitSeconds?: number;
  /** a shell in the node's own namespaces instead of a container's (containerId unused): the node's name */
  node?: string;
  /**
   * stdin and stdout carry session frames (below) instead of the command's bytes: how the CLI
   * runs every session, for its liveness and flow control
   */
  framed?: boolean;
  /** the command; empty = an interactive shell */
  command: string[];
}

/** `ps`: the processes of a container; `output` table is for a person running the agent by hand. */
export interface ProcessQuery {
  containerId: string;
  podUid?: string;
  output?: 'table' | 'json';
}

/** `ns`: the namespaces a pod's processes are in. */
export interface NamespaceQuery {
  podUid: string;
}

/** `info`: the agent's start-up checks; `check` exits non-zero when one failed. */
export interface InfoQuery {
  output?: 'table' | 'json';
  check?: boolean;
}

/**
 * What `kubectl nsdebug cp` asks of the agent: a file or tree out of the container, or one into it
 * from stdin. Out of a container that is not running: postmortem, its last filesystem (its
 * snapshot, which kubelet's labels must say is this pod's container).
 */
export type CopyRequest = { containerId: string; podUid?: string } & (
  | (SessionCopy & { postmortem?: undefined })
  | (Extract<SessionCopy, { from: string }> & { postmortem: true; podUid: string; container: string })
);

/** `kill`: end one of the agent's live sessions (`kubectl nsdebug sessions kill`). */
export interface KillRequest {
  session: string;
}

/** `recording`: a recorded session's recording (asciicast v2, or JSON without a TTY), for `kubectl nsdebug replay`. */
export interface RecordingRequest {
  session: string;
}

/** Every request the CLI makes of the agent: the one typed CLI ↔ agent contract. */
export type AgentRequest =
  | ({ operation: 'enter' } & SessionRequest)
  | ({ operation: 'ps' } & ProcessQuery)
  | ({ operation: 'ns' } & NamespaceQuery)
  | ({ operation: 'cp' } & CopyRequest)
  | ({ operation: 'info' } & InfoQuery)
  | ({ operation: 'kill' } & KillRequest)
  | ({ operation: 'recording' } & RecordingRequest);

/** What a DebugSession may carry: every request but info, kill and recording. */
export type DebugSessionRequest = Extract<AgentRequest, { operation: SessionOperation }>;

/** What a SessionRequest field's argv flag carries: presence, text, a number, a --ns list, UID[:GID]. */
export type SessionFlagKind = 'switch' | 'text' | 'number' | 'namespaces' | 'user';

/**
 * How `enter` spells each SessionRequest field on argv (`--FLAG[=VALUE]`, in this order; the
 * command follows `--`): the one table agentArgv encodes with and src/agent/args.ts decodes with.
 */
export const SESSION_FLAGS = {
  containerId: { flag: 'container-id', kind: 'text' },
  podUid: { flag: 'pod-uid', kind: 'text' },
  pod: { flag: 'pod', kind: 'text' },
  container: { flag: 'container', kind: 'text' },
  namespaces: { flag: 'ns', kind: 'namespaces' },
  tools: { flag: 'tools', kind: 'switch' },
  tty: { flag: 'tty', kind: 'switch' },
  readOnly: { flag: 'read-only', kind: 'switch' },
  process: { flag: 'process', kind: 'number' },
  privileged: { flag: 'privileged', kind: 'switch' },
  user: { flag: 'user', kind: 'user' },
  postmortem: { flag: 'postmortem', kind: 'switch' },
  waitSeconds: { flag: 'wait', kind: 'number' },
  node: { flag: 'node', kind: 'text' },
  framed: { flag: 'framed', kind: 'switch' },
} as const satisfies Record<Exclude<keyof SessionRequest, 'command'>, { flag: string; kind: SessionFlagKind }>;

/**
 * The argv encoding of a request: `nsdebug-agent OPERATION --contract=N --flag=value… [-- COMMAND…]`,
 * without the executable. Passed as argv, never a shell string; decoded by src/agent/args.ts.
 */
export function agentArgv(req: AgentRequest): string[] {
  const argv: string[] = [req.operation, `--contract=${CONTRACT_VERSION}`];
  const flag = (name: string, value: string | number | boolean | undefined) => {
    if (value === true) argv.push(`--${name}`);
    else if (value !== undefined && value !== false && value !== '' && value !== 0) argv.push(`--${name}=${value}`);
  };
  switch (req.operation) {
    case 'enter':
      for (const [field, { flag: name, kind }] of Object.entries(SESSION_FLAGS)) {
        const value = req[field as keyof typeof SESSION_FLAGS];
        if (kind === 'namespaces') flag(name, (value as NamespaceKind[] | undefined)?.join(','));
        else if (kind === 'user') flag(name, value && formatSessionUser(value as SessionUser));
        else flag(name, value as string | number | boolean | undefined);
      }
      argv.push('--', ...req.command);
      break;
    case 'ps':
      flag('container-id', req.containerId);
      flag('pod-uid', req.podUid);
      flag('output', req.output);
      break;
    case 'ns':
      flag('pod-uid', req.podUid);
      break;
    case 'cp':
      flag('container-id', req.containerId);
      flag('pod-uid', req.podUid);
      if (req.postmortem) argv.push('--postmortem', `--container=${req.container}`);
      if ('from' in req) {
        flag('from', req.from);
        flag('recursive', req.recursive);
      } else if ('tree' in req) {
        argv.push(`--to=${req.to}`, '--tree');
        flag('name', req.name);
      } else {
        argv.push(`--to=${req.to}`, `--name=${req.name}`, `--size=${req.size}`);
        argv.push(`--mode=${req.mode.toString(8).padStart(4, '0')}`, `--mtime=${Math.round(req.mtimeMs)}`);
      }
      break;
    case 'info':
      flag('output', req.output);
      flag('check', req.check);
      break;
    case 'kill':
    case 'recording':
      flag('session', req.session);
      break;
  }
  return argv;
}

/** The command to exec in the agent pod for a request: the agent's executable, then agentArgv. */
export const agentCommand = (req: AgentRequest) => [AGENT_EXECUTABLE, ...agentArgv(req)];

/**
 * The DebugSession encoding of a request (session authorization): what the object asks, for the
 * target pod by name. The agent finds the container, its instance and the pod's UID itself, from
 * the pod as it reads it (src/agent/debug-session.ts), so nothing of those is taken from the client.
 */
export function debugSessionAsk(req: DebugSessionRequest, target: { pod: string; container?: string }): SessionAsk {
  const at = { pod: target.pod, ...(target.container !== undefined ? { container: target.container } : {}) };
  switch (req.operation) {
    case 'enter':
      return {
        ...at,
        tools: req.tools,
        tty: req.tty,
        readOnly: req.readOnly === true,
        ...(req.process !== undefined ? { process: req.process } : {}),
        ...(req.waitSeconds ? { waitSeconds: req.waitSeconds } : {}),
        command: req.command,
      };
    case 'ps':
      return { operation: 'ps', ...at, command: [] };
    case 'ns':
      return { operation: 'ns', pod: target.pod, command: [] };
    case 'cp':
      // whether the container is running (and so post-mortem) the agent reads from the pod itself
      return { operation: 'cp', ...at, copy: sessionCopyOf(req), command: [] };
  }
}

/** What a cp asks, without where: the container and the post-mortem choice are the agent's to find. */
function sessionCopyOf(req: CopyRequest): SessionCopy {
  if ('from' in req) return { from: req.from, ...(req.recursive ? { recursive: true } : {}) };
  if ('tree' in req) return { to: req.to, tree: true, ...(req.name !== undefined ? { name: req.name } : {}) };
  const { to, name, size, mode, mtimeMs } = req;
  return { to, name, size, mode, mtimeMs };
}

/**
 * One namespace a pod's processes are in, as `nsdebug-agent ns` lists them (one array,
 * like lsns -J): its inode is its identity, shared by whoever else is in it.
 */
export interface NamespaceInfo {
  kind: NamespaceKind;
  /** the inode number /proc/PID/ns/KIND and lsns show */
  inode: number;
  /** IDs of the pod's containers (the sandbox's too) whose init process is in it */
  containers: string[];
  /** a namespace no container's init is in: the container whose processes made it (unshare, a sandbox) */
  nestedIn?: string;
  /** the node's own namespace of this kind (its init's, else the container runtime's) */
  node: boolean;
  /** PID namespaces: depth below the node's (0 = the node's, 1 = a container's, 2+ nested in one) */
  level?: number;
  /** how many of the pod's processes are in it */
  processes: number;
  /** its first process (PID 1 of a PID namespace), by host PID */
  hostPid: number;
  command: string;
}

/** `nsdebug-agent cp --from`: the first line of its stdout; the file's bytes follow. */
export interface CopyHeader {
  /** the absolute path inside the container */
  path: string;
  size: number;
  /** permission bits (st_mode & 07777) */
  mode: number;
  mtimeMs: number;
}

/** `nsdebug-agent cp --to`: its stdout once the file is in place. */
export interface CopyResult {
  path: string;
  size: number;
}

/** One start-up check of the agent (`nsdebug-agent info`), e.g. "host PID namespace visible". */
export interface AgentCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** What `nsdebug-agent info --output=json` prints; `kubectl nsdebug status` shows it per node. */
export interface AgentInfo {
  version: string;
  contractVersion: number;
  /** containerd, cri-o, docker, or unknown */
  runtime: string;
  /** v1, v2 or hybrid */
  cgroupVersion: string;
  /** cgroupfs or systemd */
  cgroupDriver: string;
  kernel: string;
  /** the Node.js the agent runs on (process.version); absent from older agents */
  nodejs?: string;
  checks: AgentCheck[];
}

// ---- session authorization (opt-in, deploy/session-auth/) ----
// A user without exec on the agent asks for a session by creating a DebugSession in the target's
// namespace (RBAC decides who may; an admission policy pins spec.requester to the creator), then
// reaches the agent's session port through pods/portforward and presents the secret whose hash
// the object carries. The agent serves what the object says, once, shortly after its creation.

export const DEBUG_SESSION = { group: 'nsdebug.io', version: 'v1alpha1', plural: 'debugsessions', kind: 'DebugSession' } as const;
export const DEBUG_SESSION_API = `${DEBUG_SESSION.group}/${DEBUG_SESSION.version}`;

/** The admission policy (and its binding) that pins a DebugSession's requester to its creator. */
export const SESSION_POLICY = 'nsdebug-debugsession-requester';

/** The agent's session port: 127.0.0.1 in the agent pod, reachable only through pods/portforward. */
export const SESSION_PORT = 7070;

/** A DebugSession is honoured once, within this many seconds of its creation. */
export const SESSION_TTL_SECONDS = 60;

/** What a DebugSession may ask of the agent: a session (enter), or one of the queries. */
export const SESSION_OPERATIONS = ['enter', 'ps', 'ns', 'cp'] as const;
export type SessionOperation = (typeof SESSION_OPERATIONS)[number];

/**
 * cp through a DebugSession: the CopyRequest without the container, which the agent finds itself.
 *   from:            one file out (CopyHeader, its bytes); recursive: the tree at from, a tar stream
 *   to, name, size…: one file in, exactly size bytes on stdin
 *   to, tree:        a tar stream on stdin, unpacked below to/name when to is a directory and name
 *                    is given (cp -r DIR), else into to (created if missing)
 */
export type SessionCopy =
  | { from: string; recursive?: boolean }
  | { to: string; name: string; size: number; mode: number; mtimeMs: number }
  | { to: string; tree: true; name?: string };

/** What a DebugSession asks, apart from who asks and the secret's hash: the CLI's part of it. */
export type SessionAsk = Omit<DebugSessionSpec, 'requester' | 'secretHash'>;

/** What a DebugSession asks for: the options of `enter` (or a query), for one pod, by one user. */
export interface DebugSessionSpec extends Pick<SessionRequest, 'container' | 'readOnly' | 'process' | 'waitSeconds' | 'command'> {
  tools?: boolean;
  tty?: boolean;
  /**
   * Never set by nsdebug: a DebugSession joins every namespace of its target (one left out would
   * be the agent's). The CRD, the admission policy and the agent refuse a subset.
   */
  namespaces?: NamespaceKind[];
  /** enter when unset */
  operation?: SessionOperation;
  /** with operation cp */
  copy?: SessionCopy;
  /** the user who created the object; the admission policy rejects any other value */
  requester: string;
  /** a pod in the DebugSession's own namespace */
  pod: string;
  /** hex SHA-256 of the secret the CLI presents on the session port (the secret itself is never stored) */
  secretHash: string;
}

export interface DebugSessionStatus {
  /** Claimed by the agent that serves it: no second connection is served */
  phase?: 'Claimed';
  node?: string;
  claimedAt?: string;
}

export interface DebugSessionObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion?: string; creationTimestamp?: string; uid?: string };
  spec: DebugSessionSpec;
  status?: DebugSessionStatus;
}

/** What a DebugSession carries of its secret: hex SHA-256; the CLI makes it, the agent compares it. */
export const sessionSecretHash = (secret: string) => createHash('sha256').update(secret).digest('hex');

/** The first frame on the session port: which DebugSession, and its secret. */
export interface SessionHello {
  /** CONTRACT_VERSION of the client */
  contract: number;
  namespace: string;
  name: string;
  /** 64 hex characters */
  secret: string;
}

/**
 * Session frames, both ways: a type byte, a big-endian u32 payload length, the payload. The
 * session port's TCP stream carries them, and so do an exec's stdin and stdout (`enter --framed`):
 * one protocol, one liveness rule and one exit path for every session.
 */
export const Frame = {
  /** client → agent, first on the session port: SessionHello as JSON */
  HELLO: 0x10,
  /** client → agent, never more than the agent's grants (WINDOW) allow */
  STDIN: 0,
  STDOUT: 1,
  STDERR: 2,
  /** agent → client, last: the exit code as a big-endian i32 */
  EXIT: 3,
  /** client → agent: {"cols":…,"rows":…} */
  RESIZE: 4,
  /** client → agent: stdin has ended */
  STDIN_EOF: 5,
  /** both ways, every HEARTBEAT_INTERVAL_MS: the sender is alive */
  HEARTBEAT: 6,
  /** agent → client, before EXIT when the agent ended the session: SessionEnded as JSON */
  ENDED: 7,
  /**
   * Both ways: the other side may send this many more data bytes (big-endian u32): stdin bytes
   * when the agent grants them, STDOUT and STDERR bytes when the client does. Each side starts
   * with no credit; the other grants STREAM_WINDOW at once, then what it has written on. Nobody
   * stops reading a session's stream to hold data back, so heartbeats, pings and EOF always get
   * through (an API server cuts a WebSocket whose client stops reading its pings).
   */
  WINDOW: 8,
} as const;

/** Each side sends a heartbeat this often… */
export const HEARTBEAT_INTERVAL_MS = 5000;
/** …and ends the session when it has read nothing for this long (a cut with no FIN). */
export const HEARTBEAT_TIMEOUT_MS = 20_000;
/** The data either side may have in flight, unacknowledged: each grants it at the start. */
export const STREAM_WINDOW = 1 << 20;

/** How a session ended, as its audit line's `ended` says. */
export const END_REASONS = ['exit', 'client gone', 'heartbeat lost', 'agent stopping', 'revoked', 'max lifetime', 'killed'] as const;
export type EndReason = (typeof END_REASONS)[number];

/** An ending the agent decided (ENDED's payload): why, in one line for the user. */
export interface SessionEnded {
  reason: Exclude<EndReason, 'exit'>;
  message: string;
}

/** The largest payload either side accepts in one frame. */
export const MAX_FRAME_PAYLOAD = 1 << 20;

/**
 * A frame as one buffer: its payload given whole or in parts, behind `channel` when the carrier
 * wants one byte in front (the exec's and the port-forward's WebSocket channel). One copy of
 * the payload, however it is carried: a 100 MiB transfer is all copies.
 */
export function encodeFrame(type: number, payload: Buffer | readonly Buffer[] = [], channel?: number): Buffer {
  const parts = Buffer.isBuffer(payload) ? [payload] : payload;
  const start = channel === undefined ? 0 : 1;
  let size = 0;
  for (const part of parts) size += part.length;
  const bytes = Buffer.allocUnsafe(start + 5 + size);
  if (channel !== undefined) bytes[0] = channel;
  bytes[start] = type;
  bytes.writeUInt32BE(size, start + 1);
  let at = start + 5;
  for (const part of parts) at += part.copy(bytes, at);
  return bytes;
}

/** Splits a byte stream into frames; throws on a frame larger than MAX_FRAME_PAYLOAD. */
export class FrameDecoder {
  // chunks are joined only once a whole header, or a whole frame, has arrived
  private chunks: Buffer[] = [];
  private length = 0;
  private needed = 5;

  push(chunk: Buffer): Array<{ type: number; payload: Buffer }> {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const frames: Array<{ type: number; payload: Buffer }> = [];
    if (this.length < this.needed) return frames;
    let buffered = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.length);
    this.needed = 5;
    while (buffered.length >= 5) {
      const length = buffered.readUInt32BE(1);
      if (length > MAX_FRAME_PAYLOAD) throw new Error(`a frame of ${length} bytes is larger than ${MAX_FRAME_PAYLOAD}`);
      if (buffered.length < 5 + length) {
        this.needed = 5 + length;
        break;
      }
      frames.push({ type: buffered[0] as number, payload: buffered.subarray(5, 5 + length) });
      buffered = buffered.subarray(5 + length);
    }
    this.chunks = buffered.length ? [buffered] : [];
    this.length = buffered.length;
    return frames;
  }
}

/** A live session's ID: what `sessions` lists and `sessions kill` takes (10 hex digits). */
export const SESSION_ID = /^[0-9a-f]{10}$/;

/** The labels (and the annotation key) of the Lease each live session is published as. */
export const SESSION_LABELS = {
  session: 'nsdebug.io/session',
  node: 'nsdebug.io/node',
  targetNamespace: 'nsdebug.io/target-namespace',
} as const;

/** The Lease of a live session, in the agent's namespace. */
export const sessionLeaseName = (id: string) => `nsdebug-session-${id}`;

/**
 * Each agent's own report (its `info`), published as one Lease per agent pod, named after the
 * pod and owned by it: `kubectl nsdebug status` lists them in one call whatever the number of
 * nodes, instead of asking every agent by exec. The agent renews it every REPORT_EVERY_S; one
 * older than its leaseDurationSeconds is stale.
 */
export const AGENT_REPORT = { label: 'nsdebug.io/agent-report', annotation: 'nsdebug.io/agent-report' } as const;
export const REPORT_EVERY_S = 300;

/** What an agent publishes of a live session (the Lease's annotation), and `sessions -o json` prints. */
export interface PublishedSession {
  id: string;
  /** the node whose agent runs it */
  node: string;
  target: { namespace: string; pod: string; container: string } | { node: string };
  /** exec: authorized by pods/exec on the agent (the API server's audit log names who); debugsession: by a DebugSession */
  via: 'exec' | 'debugsession';
  /** the DebugSession's requester, pinned by the admission policy */
  requester?: string;
  /** namespace/name of the DebugSession */
  debugSession?: string;
  since: string;
  tty: boolean;
  command: string[];
  privileged?: boolean;
  /** the recording's name, when the session is recorded */
  recording?: string;
}

/**
 * Session recording as the cluster asks for it (install --record, the chart's recording.*),
 * carried to the agent in its DaemonSet's environment (NSDEBUG_RECORD…).
 */
export interface RecordingSettings {
  to: 'hostpath' | 'log';
  /** hostpath: the node directory, mounted at the same path in the agent */
  dir: string;
  /** the directory's cap, in bytes: older recordings are removed to stay below it */
  maxBytes: number;
  /** record what is typed too (asciicast "i" events) */
  input: boolean;
  /** labelled: only sessions into namespaces labelled nsdebug.io/record=true */
  scope: 'all' | 'labelled';
}

export const DEFAULT_RECORDING_DIR = '/var/log/nsdebug/recordings';
