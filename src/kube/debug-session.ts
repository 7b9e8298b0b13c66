// Session authorization, the CLI's half: who am I (SelfSubjectReview), create the DebugSession
// that asks for the session (RBAC in the target's namespace and the admission policy decide),
// delete it afterwards. The secret proving the connection belongs to the object stays in this
// process; the object carries only its hash.
import { randomBytes } from 'node:crypto';

import { DEBUG_SESSION, DEBUG_SESSION_API, ExitCode, sessionSecretHash, type DebugSessionSpec } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { apiStatusCode, clientNode, describeApiError, statusMessage, type KubeConnection } from './config.js';

export interface SessionClient {
  /** the authenticated user's name, as admission sees it */
  whoAmI(): Promise<string>;
  /** create a DebugSession in namespace; its generated name */
  create(namespace: string, spec: DebugSessionSpec): Promise<string>;
  remove(namespace: string, name: string): Promise<void>;
}

/** A fresh secret and the hash the DebugSession carries. */
export function newSessionSecret(): { secret: string; secretHash: string } {
  const secret = randomBytes(32).toString('hex');
  return { secret, secretHash: sessionSecretHash(secret) };
}

/** A refused create as one line: not installed, not allowed, or rejected by the admission policy. */
export function createFailure(err: unknown, namespace: string, conn?: KubeConnection): NsdebugError {
  const code = apiStatusCode(err);
  const body = (err as { body?: unknown }).body;
  const message = body === undefined ? '' : statusMessage(body);
  if (code === 404) {
    return new NsdebugError(
      'this cluster has no DebugSession resource: session authorization is not installed (kubectl nsdebug install --session-auth)',
      ExitCode.AGENT_UNAVAILABLE,
    );
  }
  if (code === 403 && /admission|ValidatingAdmissionPolicy|requester/.test(message)) {
    return new NsdebugError(`the admission policy refused the DebugSession: ${message}`, ExitCode.FORBIDDEN);
  }
  if (code === 403) {
    return new NsdebugError(
      `you may not debug pods in namespace ${namespace}: missing permission create debugsessions.${DEBUG_SESSION.group} there; ask your cluster admin to bind the nsdebug-session-user role in it`,
      ExitCode.FORBIDDEN,
    );
  }
  if (code === 422 || code === 400) return new NsdebugError(`the API server refused the DebugSession: ${message}`, ExitCode.USAGE);
  return describeApiError(err, `create a DebugSession in namespace ${namespace}`, conn);
}

export async function createSessionClient(conn: KubeConnection): Promise<SessionClient> {
  const k8s = await clientNode();
  const authentication = conn.kc.makeApiClient(k8s.AuthenticationV1Api);
  const custom = conn.kc.makeApiClient(k8s.CustomObjectsApi);
  const { group, version, plural, kind } = DEBUG_SESSION;
  return {
    whoAmI: async () => {
      try {
        const review = await authentication.createSelfSubjectReview({
          body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
        });
        const name = review.status?.userInfo?.username;
        if (!name) throw new Error('the API server did not say who you are');
        return name;
      } catch (err) {
        throw describeApiError(err, 'ask the API server who you are (SelfSubjectReview)', conn);
      }
    },
    create: async (namespace, spec) => {
      try {
        const created = (await custom.createNamespacedCustomObject({
          group,
          version,
          namespace,
          plural,
          body: { apiVersion: DEBUG_SESSION_API, kind, metadata: { generateName: 'nsdebug-' }, spec },
        })) as { metadata?: { name?: string } };
        const name = created.metadata?.name;
        if (!name) throw new Error('the created DebugSession has no name');
        return name;
      } catch (err) {
        throw createFailure(err, namespace, conn);
      }
    },
    remove: async (namespace, name) => {
      try {
        await custom.deleteNamespacedCustomObject({ group, version, namespace, plural, name });
      } catch (err) {
        if (apiStatusCode(err) !== 404) throw describeApiError(err, `delete DebugSession ${namespace}/${name}`, conn);
      }
    },
  };
}
