// The agent's boundary: a request is checked here, once, before anything runs, whichever way it
// came (argv through exec, decoded by src/agent/args.ts; a DebugSession on the session port,
// decoded by src/agent/debug-session.ts). Values are typed by then; this checks what they mean.
import { NAMESPACE_KINDS, SESSION_ID, type AgentRequest, type CopyRequest, type SessionRequest } from '../contract.js';
import { usageError } from '../errors.js';
import { DNS_LABEL, DNS_SUBDOMAIN } from '../names.js';
import { CONTAINER_ID, POD_UID } from './cgroups.js';

/** A path inside the container, as argv carries it: no NUL (argv cannot hold one), at most PATH_MAX. */
const CONTAINER_PATH = /^[^\0]{1,4095}$/;
/** The largest user or group ID: -1 (4294967295) means "unchanged" to the kernel. */
const MAX_ID = 0xfffffffe;

/** A value as an error quotes it: short, and never a control character the terminal obeys. */
const shown = (value: unknown) => JSON.stringify(String(value).slice(0, 80));
/** A pod as the audit line names it: "namespace/name". */
const isNamespacedPod = (text: string) => {
  const [namespace = '', name = '', ...rest] = text.split('/');
  return rest.length === 0 && DNS_LABEL.test(namespace) && DNS_SUBDOMAIN.test(name);
};
const isInteger = (value: unknown, min: number, max: number): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;

/** The request, if every value is valid and the combination makes sense; else the usage error. */
export function validateAgentRequest<T extends AgentRequest>(req: T): T {
  switch (req.operation) {
    case 'enter':
      validateSession(req);
      break;
    case 'ps':
      validateContainer(req.containerId, req.podUid);
      break;
    case 'ns':
      if (!req.podUid) throw usageError('--pod-uid is required');
      validateContainer(undefined, req.podUid);
      break;
    case 'cp':
      validateContainer(req.containerId, req.podUid);
      validateCopy(req);
      break;
    case 'info':
      break;
    case 'kill':
    case 'recording':
      if (!SESSION_ID.test(req.session)) throw usageError(`--session must be a session ID (10 hex digits), got ${shown(req.session)}`);
      break;
  }
  return req;
}

function validateContainer(containerId: string | undefined, podUid: string | undefined, required = containerId !== undefined): void {
  if (required && !containerId) throw usageError('--container-id is required');
  if (containerId && !CONTAINER_ID.test(containerId))
    throw usageError(`--container-id must be 64 lowercase hex digits, got ${shown(containerId)}`);
  if (podUid !== undefined && !POD_UID.test(podUid)) throw usageError(`--pod-uid must be a UUID, got ${shown(podUid)}`);
}

function validateSession(req: SessionRequest): void {
  const { waitSeconds, node, postmortem, podUid, container, user } = req;
  if (waitSeconds !== undefined && !isInteger(waitSeconds, 1, 99_999))
    throw usageError(`--wait must be a number of seconds (1-99999), got ${shown(waitSeconds)}`);
  if (waitSeconds !== undefined && (!podUid || !container || postmortem))
    throw usageError('--wait needs --pod-uid and --container (the container to wait for), and takes no --postmortem');
  if (node !== undefined && !DNS_SUBDOMAIN.test(node)) throw usageError(`--node must be a node name, got ${shown(node)}`);
  if (node !== undefined && (req.containerId || waitSeconds || postmortem || req.process !== undefined || req.readOnly))
    throw usageError('--node enters the node itself: it takes no --container-id, --wait, --postmortem, --process or --read-only');
  validateContainer(req.containerId, podUid, waitSeconds === undefined && node === undefined);
  if (req.pod !== undefined && !isNamespacedPod(req.pod)) throw usageError(`--pod must be NAMESPACE/NAME, got ${shown(req.pod)}`);
  if (container !== undefined && !DNS_LABEL.test(container))
    throw usageError(`--container must be a container name, got ${shown(container)}`);
  if (postmortem && (req.process !== undefined || req.readOnly || req.namespaces !== undefined))
    throw usageError('--postmortem opens the dead container read-only in the pod network: it takes no --process, --read-only or --ns');
  if (req.process !== undefined && !isInteger(req.process, 1, 9_999_999_999))
    throw usageError(`--process must be a PID inside the container, got ${shown(req.process)}`);
  if (user !== undefined && !(isInteger(user.uid, 0, MAX_ID) && (user.gid === undefined || isInteger(user.gid, 0, MAX_ID))))
    throw usageError(`--user must be UID or UID:GID (numbers inside the container), got ${shown(JSON.stringify(user))}`);
  if (req.privileged && user)
    throw usageError("--privileged keeps the agent's root; --user picks a user with the target's limits: choose one");
  if ((req.privileged || user) && (node !== undefined || postmortem))
    throw usageError("--privileged and --user apply to a running container's session, not to --node or --postmortem");
  // Post-mortem mounts a dead container's snapshot: the agent checks it is this pod's container of this name.
  if (postmortem && (!podUid || !container))
    throw usageError(
      "--postmortem needs --pod-uid and --container (the dead container is checked to be that pod's container of that name)",
    );
  const unknownKind = req.namespaces?.find((kind) => !NAMESPACE_KINDS.includes(kind));
  if (unknownKind !== undefined) throw usageError(`--ns: unknown namespace kind ${shown(unknownKind)}`);
  if (req.readOnly && req.namespaces && !req.namespaces.includes('mnt'))
    throw usageError('--read-only needs the mount namespace: add mnt to --ns');
  // exec(2) takes NUL-terminated strings: a NUL would cut an argument short, unseen
  if (!Array.isArray(req.command) || !req.command.every((arg) => typeof arg === 'string' && !arg.includes('\0')))
    throw usageError('the command must be a list of strings without NUL bytes');
}

function validateCopy(req: CopyRequest): void {
  const path = 'from' in req ? req.from : req.to;
  if (typeof path !== 'string' || !CONTAINER_PATH.test(path))
    throw usageError(`--from/--to must be a path of 1 to 4095 bytes, got ${shown(path)}`);
  if (req.postmortem) {
    if (!req.podUid) throw usageError('--postmortem needs --pod-uid');
    if (!DNS_LABEL.test(req.container)) throw usageError(`--postmortem needs --container NAME, got ${shown(req.container)}`);
  }
  if ('from' in req) return;
  const { name } = req;
  const isName = (n: unknown) => typeof n === 'string' && /^[^/\0]{1,255}$/.test(n) && n !== '.' && n !== '..';
  if ('tree' in req ? name !== undefined && !isName(name) : !isName(name))
    throw usageError(`--name must be a file name (no "/", not "." or ".."), got ${shown(name)}`);
  if ('tree' in req) return;
  const { size, mode, mtimeMs } = req;
  if (!isInteger(size, 0, Number.MAX_SAFE_INTEGER)) throw usageError(`--size must be a number of bytes, got ${shown(size)}`);
  if (!isInteger(mode, 0, 0o7777)) throw usageError(`--mode must be permission bits (0 to 7777 octal), got ${shown(mode)}`);
  if (typeof mtimeMs !== 'number' || !Number.isFinite(mtimeMs) || mtimeMs < 0)
    throw usageError(`--mtime must be milliseconds since 1970, got ${shown(mtimeMs)}`);
}
