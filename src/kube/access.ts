// Before anything reaches the agent: may this user exec into the target pod? The agent's exec is
// authorized against the agent's namespace, not the target's, so the CLI asks the API server
// (SelfSubjectAccessReview, what `kubectl auth can-i create pods/exec` does) and refuses early.
// The check fails closed: when the question cannot be asked, nothing runs.
import { DEBUG_SESSION, ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { apiClients, apiStatusCode, describeApiError, type KubeConnection } from './config.js';

/** One question: may I VERB RESOURCE/SUBRESOURCE (NAME) in NAMESPACE? */
export interface AccessQuestion {
  namespace: string;
  verb: string;
  /** the API group; "" or unset for the core group */
  group?: string;
  resource: string;
  subresource?: string;
  name?: string;
}

export interface AccessAnswer {
  allowed: boolean;
  /** the authorizer's reason, when it gave one */
  reason?: string;
  evaluationError?: string;
}

export interface AccessClient {
  review(question: AccessQuestion): Promise<AccessAnswer>;
}

/** "create pods/exec": the permission as `kubectl auth can-i` spells it. */
export const permissionOf = (q: AccessQuestion) =>
  `${q.verb} ${q.resource}${q.group ? `.${q.group}` : ''}${q.subresource ? `/${q.subresource}` : ''}`;

export const execQuestion = (namespace: string, pod: string): AccessQuestion => ({
  namespace,
  verb: 'create',
  resource: 'pods',
  subresource: 'exec',
  name: pod,
});

/** Session authorization: the right to debug a pod is the right to create a DebugSession next to it. */
export const sessionQuestion = (namespace: string): AccessQuestion => ({
  namespace,
  verb: 'create',
  group: DEBUG_SESSION.group,
  resource: DEBUG_SESSION.plural,
});

/** Refuse unless the user may create pods/exec on the target pod (or, with sessionAuth, a DebugSession in its namespace). */
export async function checkExecAccess(
  target: { namespace: string; pod: string },
  client: AccessClient,
  sessionAuth = false,
): Promise<void> {
  const question = sessionAuth ? sessionQuestion(target.namespace) : execQuestion(target.namespace, target.pod);
  const answer = await client.review(question);
  if (answer.allowed) return;
  const why = answer.reason || answer.evaluationError;
  throw new NsdebugError(
    `you may not ${sessionAuth ? 'debug' : 'exec into'} pod ${target.namespace}/${target.pod}: missing permission ${permissionOf(question)} in namespace ${target.namespace}${why ? ` (${why})` : ''}; ask your cluster admin for it`,
    ExitCode.FORBIDDEN,
  );
}

/** AccessClient over SelfSubjectAccessReview. */
export async function createAccessClient(conn: KubeConnection): Promise<AccessClient> {
  const { authorization } = await apiClients(conn);
  return {
    review: async (q) => {
      try {
        const review = await authorization.createSelfSubjectAccessReview({
          body: {
            spec: {
              resourceAttributes: {
                namespace: q.namespace,
                verb: q.verb,
                group: q.group,
                resource: q.resource,
                subresource: q.subresource,
                name: q.name,
              },
            },
          },
        });
        return { allowed: review.status?.allowed === true, reason: review.status?.reason, evaluationError: review.status?.evaluationError };
      } catch (err) {
        const code = apiStatusCode(err);
        if (code === 403 || code === 404) {
          // fail closed: without an answer the CLI cannot tell whether the user may touch the target
          throw new NsdebugError(
            `cannot check whether you may ${permissionOf(q)} on pod ${q.namespace}/${q.name}: the API server refused the SelfSubjectAccessReview (${code}); ask your cluster admin to bind the nsdebug-user ClusterRole`,
            ExitCode.FORBIDDEN,
          );
        }
        throw describeApiError(err, `check access to pod ${q.namespace}/${q.name}`, conn);
      }
    },
  };
}
