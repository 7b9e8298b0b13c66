// Session authorization, the agent's half: a connection on the session port names a DebugSession
// and presents its secret. The agent serves it only if the object exists in the API (so RBAC let
// its requester create it there, and the admission policy pinned spec.requester to them), the
// secret matches, it is fresh and unclaimed, and its pod, in the object's own namespace, runs on
// this node. The claim is a status update with the object's resourceVersion: of two connections
// racing for one object, the API server lets exactly one win. Everything else about the session
// (pod, container, command, flags) comes from the object, never from the connection.
import { timingSafeEqual } from 'node:crypto';

import {
  CONTRACT_VERSION,
  DEBUG_SESSION,
  DEBUG_SESSION_API,
  ExitCode,
  SESSION_OPERATIONS,
  SESSION_TTL_SECONDS,
  sessionSecretHash,
  type DebugSessionObject,
  type DebugSessionRequest,
  type DebugSessionSpec,
  type SessionEnded,
  type SessionHello,
} from '../contract.js';
import { NsdebugError } from '../errors.js';
import { DNS_LABEL, DNS_SUBDOMAIN } from '../names.js';
import { anyInstance, chooseContainer, exitedContainer, runningContainer, type PodLike } from '../pod.js';
import { apiMessage, type ApiResponse, type ApiWatch, type InClusterApi } from './apiserver.js';
import { validateAgentRequest } from './request.js';

const SECRET = /^[0-9a-f]{64}$/;

const refused = (why: string) => new NsdebugError(why, ExitCode.FORBIDDEN);

/** "DebugSession team-a/nsdebug-x7k2p", as messages name one. */
const sessionName = (namespace: string, name: string) => `DebugSession ${namespace}/${name}`;

/** The hello frame's JSON, validated; anything else is refused before the API is asked. */
export function parseHello(payload: Buffer): SessionHello {
  let hello: Partial<SessionHello>;
  try {
    hello = JSON.parse(payload.toString('utf8')) as Partial<SessionHello>;
  } catch {
    throw refused('the session request is not JSON');
  }
  const { contract, namespace, name, secret } = hello ?? {};
  if (contract !== CONTRACT_VERSION) {
    throw new NsdebugError(
      `this agent speaks contract ${CONTRACT_VERSION}, the client ${typeof contract === 'number' ? contract : 'an older one'}: upgrade the older of the two`,
      ExitCode.CONTRACT_MISMATCH,
    );
  }
  if (typeof namespace !== 'string' || !DNS_LABEL.test(namespace)) throw refused('the session request names no valid namespace');
  if (typeof name !== 'string' || !DNS_SUBDOMAIN.test(name)) throw refused('the session request names no valid DebugSession');
  if (typeof secret !== 'string' || !SECRET.test(secret)) throw refused('the session request carries no valid secret');
  return { contract, namespace, name, secret };
}

/** Why this object may not be served to this connection now, or undefined when it may. */
export function judgeSession(session: DebugSessionObject, hello: SessionHello, nowMs: number): string | undefined {
  const what = sessionName(hello.namespace, hello.name);
  const expected = session.spec?.secretHash;
  if (typeof expected !== 'string' || !SECRET.test(expected)) return `${what} has no valid secretHash`;
  if (!timingSafeEqual(Buffer.from(sessionSecretHash(hello.secret)), Buffer.from(expected))) return `the secret does not match ${what}`;
  if (session.status?.phase) return `${what} was used already (${session.status.phase}); each session needs a new one`;
  const created = Date.parse(session.metadata?.creationTimestamp ?? '');
  if (!Number.isFinite(created)) return `${what} has no creation time`;
  if (nowMs - created > SESSION_TTL_SECONDS * 1000) return `${what} expired (${SESSION_TTL_SECONDS} s after its creation)`;
  if (typeof session.spec.requester !== 'string' || !session.spec.requester) return `${what} names no requester`;
  return undefined;
}

const sessionPath = (namespace: string, name: string) =>
  `/apis/${DEBUG_SESSION_API}/namespaces/${namespace}/${DEBUG_SESSION.plural}/${encodeURIComponent(name)}`;

function apiFailure(status: number, body: unknown, doing: string): NsdebugError {
  const message = apiMessage({ status, body });
  if (status === 401 || status === 403)
    return new NsdebugError(
      `the agent may not ${doing} (${message}); install session authorization: kubectl nsdebug install --session-auth`,
      ExitCode.AGENT_UNAVAILABLE,
    );
  return new NsdebugError(`the agent could not ${doing}: ${message}`, ExitCode.API_UNREACHABLE);
}

/** The admission policy (and its binding) that pins spec.requester: deploy/session-auth/admission-policy.yaml. */
export const REQUESTER_POLICY = 'nsdebug-debugsession-requester';
const ADMISSION_API = '/apis/admissionregistration.k8s.io/v1';

interface PolicyLike {
  spec?: { validations?: Array<{ expression?: string }>; policyName?: string; validationActions?: string[] };
}

/**
 * Why DebugSessions may not be served with this policy and binding (the API's answers for them),
 * or undefined when they pin the requester: without them anyone allowed to create a DebugSession
 * could name another user as its requester.
 */
export function judgeRequesterPolicy(policy: ApiResponse, binding: ApiResponse): string | undefined {
  const missing = `the admission policy ${REQUESTER_POLICY} that pins a DebugSession's requester is not in force`;
  const fix = 'DebugSessions are not served until a cluster admin runs `kubectl nsdebug install --session-auth`';
  if (policy.status === 404 || binding.status === 404)
    return `${missing} (its ${policy.status === 404 ? 'policy' : 'binding'} is missing); ${fix}`;
  const pins = (policy.body as PolicyLike).spec?.validations?.some(
    (v) => v.expression?.replace(/\s+/g, ' ').trim() === 'object.spec.requester == request.userInfo.username',
  );
  if (!pins) return `${missing} (the policy no longer checks spec.requester); ${fix}`;
  const { policyName, validationActions } = (binding.body as PolicyLike).spec ?? {};
  if (policyName !== REQUESTER_POLICY || !validationActions?.includes('Deny'))
    return `${missing} (its binding does not deny with it); ${fix}`;
  return undefined;
}

async function requirePinnedRequester(api: InClusterApi): Promise<void> {
  const [policy, binding] = await Promise.all([
    api.request('GET', `${ADMISSION_API}/validatingadmissionpolicies/${REQUESTER_POLICY}`),
    api.request('GET', `${ADMISSION_API}/validatingadmissionpolicybindings/${REQUESTER_POLICY}`),
  ]);
  for (const [answer, what] of [
    [policy, 'admission policy'],
    [binding, 'admission policy binding'],
  ] as const) {
    if (answer.status !== 200 && answer.status !== 404)
      throw apiFailure(answer.status, answer.body, `read the ${what} ${REQUESTER_POLICY}`);
  }
  const why = judgeRequesterPolicy(policy, binding);
  if (why) throw refused(why);
}

export interface AuthorizedSession {
  session: DebugSessionObject;
  /** what the object asks, decoded and validated */
  request: DebugSessionRequest;
  /** for the audit line */
  record: Record<string, unknown>;
}

/**
 * Check, claim and translate the DebugSession a connection names; throws the reason to refuse it.
 * Its age is judged by the API server's clock, which stamped its creation, not the node's.
 */
export async function authorizeSession(api: InClusterApi, hello: SessionHello, node: string): Promise<AuthorizedSession> {
  const what = sessionName(hello.namespace, hello.name);
  const [got] = await Promise.all([api.request('GET', sessionPath(hello.namespace, hello.name)), requirePinnedRequester(api)]);
  if (got.status === 404) throw refused(`there is no ${what}`);
  if (got.status !== 200) throw apiFailure(got.status, got.body, `read ${what}`);
  const session = got.body as DebugSessionObject;
  const nowMs = got.serverTime ?? Date.now();
  const why = judgeSession(session, hello, nowMs);
  if (why) throw refused(why);

  // Claimed before anything else is looked at: one object, one attempt, whatever its outcome.
  const claimed = await api.request('PUT', `${sessionPath(hello.namespace, hello.name)}/status`, {
    ...session,
    status: { phase: 'Claimed', node, claimedAt: new Date().toISOString() },
  });
  if (claimed.status === 409) throw refused(`${what} was used already; each session needs a new one`);
  if (claimed.status !== 200) throw apiFailure(claimed.status, claimed.body, `claim ${what}`);
  const claimedSession = claimed.body as DebugSessionObject;

  const { spec } = session;
  const podPath = `/api/v1/namespaces/${hello.namespace}/pods/${encodeURIComponent(spec.pod)}`;
  const podAnswer = await api.request('GET', podPath);
  if (podAnswer.status === 404) throw new NsdebugError(`pod ${hello.namespace}/${spec.pod} not found`, ExitCode.NOT_FOUND);
  if (podAnswer.status !== 200) throw apiFailure(podAnswer.status, podAnswer.body, `read pod ${hello.namespace}/${spec.pod}`);
  const pod = podAnswer.body as PodLike & { metadata?: { uid?: string } };
  if (pod.spec?.nodeName !== node)
    throw refused(`pod ${hello.namespace}/${spec.pod} runs on node ${pod.spec?.nodeName ?? '(none)'}, not on this agent's node ${node}`);
  return {
    session: claimedSession,
    request: requestOf(spec, pod, hello.namespace),
    record: { requester: spec.requester, debugSession: `${hello.namespace}/${hello.name}` },
  };
}

/**
 * Decode a DebugSession into the request it carries, for its pod as read now (the DebugSession
 * encoding of src/contract.ts's debugSessionAsk): the container, its instance and the pod's UID
 * come from the pod, nothing from the client. Validated like an argv request.
 */
export function requestOf(spec: DebugSessionSpec, pod: PodLike & { metadata?: { uid?: string } }, namespace: string): DebugSessionRequest {
  const podUid = pod.metadata?.uid ?? '';
  const operation = spec.operation ?? 'enter';
  if (!SESSION_OPERATIONS.includes(operation))
    throw refused(`DebugSession operation "${String(operation)}" is not one of ${SESSION_OPERATIONS.join(', ')}`);
  // The CRD prunes unknown fields; an object that carries one anyway is refused, not half-served.
  if ((spec as { privileged?: unknown }).privileged !== undefined)
    throw refused("a DebugSession cannot ask for --privileged: the agent's privileges are never served through one");
  if (operation === 'ns') return validateAgentRequest({ operation, podUid });
  const choice = chooseContainer(pod, spec.container);
  if (operation === 'ps') return validateAgentRequest({ operation, containerId: runningContainer(pod, choice).containerId, podUid });
  if (operation === 'cp') {
    if (!spec.copy) throw refused('a cp DebugSession needs spec.copy');
    // out of a container that is not running: its last filesystem, as the agent reads the pod
    const dead = 'from' in spec.copy ? exitedContainer(pod, choice) : undefined;
    if (dead && 'from' in spec.copy)
      return validateAgentRequest({
        operation,
        containerId: dead.containerId,
        podUid,
        ...spec.copy,
        postmortem: true,
        container: choice.name,
      });
    return validateAgentRequest({ operation, containerId: runningContainer(pod, choice).containerId, podUid, ...spec.copy });
  }
  // Every namespace the target does not share with the agent: one left out would be the agent's
  // (the node's PID namespace, its mounts and token). The CRD and the admission policy refuse it too.
  if (spec.namespaces?.length)
    throw refused('a DebugSession joins every namespace of its target; spec.namespaces is not allowed (drop --ns)');
  // --wait: the instance it has now (or none yet) is the one to skip; otherwise a container
  // that is not running opens its last instance, post-mortem
  const container = spec.waitSeconds ? anyInstance(pod, choice) : (exitedContainer(pod, choice) ?? runningContainer(pod, choice));
  return validateAgentRequest({
    operation,
    containerId: container.containerId,
    podUid,
    pod: `${namespace}/${spec.pod}`,
    container: choice.name,
    tools: spec.tools === true,
    tty: spec.tty === true,
    readOnly: spec.readOnly === true && !container.exited,
    privileged: false,
    postmortem: !spec.waitSeconds && container.exited !== undefined,
    ...(spec.process !== undefined ? { process: spec.process } : {}),
    ...(spec.waitSeconds ? { waitSeconds: spec.waitSeconds } : {}),
    command: Array.isArray(spec.command) ? spec.command : [],
  });
}

/**
 * Delete the DebugSession once its session is over, whoever's side ended it: nothing is left
 * behind even when the CLI was killed (the audit line keeps the record). 404: the CLI was first.
 */
export async function deleteSession(api: InClusterApi, session: DebugSessionObject): Promise<void> {
  const { namespace, name, uid } = session.metadata;
  const deleted = await api.request('DELETE', sessionPath(namespace, name), {
    apiVersion: 'v1',
    kind: 'DeleteOptions',
    ...(uid ? { preconditions: { uid } } : {}),
  });
  if (deleted.status !== 200 && deleted.status !== 202 && deleted.status !== 404)
    throw apiFailure(deleted.status, deleted.body, `delete ${sessionName(namespace, name)}`);
}

/** How long to wait before watching again after a watch failed (the API server restarting). */
const REWATCH_DELAY_MS = 1000;

/**
 * Resolves `revoked` when the claimed DebugSession is deleted (or replaced by another of its
 * name) while its session runs: revocation. A watch on the one object; when the server ends it
 * (its timeout, a restart), one GET tells whether the object is still the same, then it watches
 * again. The API server being away is not revocation: the session goes on.
 */
export function watchRevocation(api: InClusterApi, session: DebugSessionObject): { revoked: Promise<SessionEnded>; stop: () => void } {
  const { namespace, name, uid } = session.metadata;
  let resourceVersion = session.metadata.resourceVersion;
  let stopped = false;
  let current: ApiWatch | undefined;
  let wake: (() => void) | undefined;
  const revoked = new Promise<SessionEnded>((resolve) => {
    const revoke = () => resolve({ reason: 'revoked', message: `${sessionName(namespace, name)} was deleted: the session is revoked` });
    const collection = `/apis/${DEBUG_SESSION_API}/namespaces/${namespace}/${DEBUG_SESSION.plural}`;
    void (async () => {
      while (!stopped) {
        const query = new URLSearchParams({ watch: '1', fieldSelector: `metadata.name=${name}`, timeoutSeconds: '300' });
        if (resourceVersion) query.set('resourceVersion', resourceVersion);
        current = api.watch(`${collection}?${query.toString()}`, (event) => {
          if (event.type === 'DELETED') revoke();
          else if (event.type === 'ERROR')
            resourceVersion = undefined; // 410 Gone: start from now
          else if (event.object?.metadata?.uid && uid && event.object.metadata.uid !== uid) revoke();
          else if (event.object?.metadata?.resourceVersion) resourceVersion = event.object.metadata.resourceVersion;
        });
        const status = await current.done;
        if (stopped) return;
        const got = await api.request('GET', sessionPath(namespace, name)).catch(() => undefined);
        if (got?.status === 404) return revoke();
        const now = (got?.status === 200 ? got.body : undefined) as DebugSessionObject | undefined;
        if (now && uid && now.metadata?.uid !== uid) return revoke();
        if (now?.metadata?.resourceVersion) resourceVersion = now.metadata.resourceVersion;
        if (status !== 200 || !got) await new Promise<void>((r) => setTimeout((wake = r), REWATCH_DELAY_MS));
      }
    })();
  });
  return {
    revoked,
    stop: () => {
      stopped = true;
      current?.stop();
      wake?.();
    },
  };
}
