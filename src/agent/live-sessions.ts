// Who is debugging what: every live session of this agent's serve process, by ID. Each is
// published as one Lease in the agent's namespace, labelled with its node and its target's
// namespace and owned by the agent pod (so garbage-collected with it), which `kubectl nsdebug
// sessions` lists in one call whatever the number of nodes; and each can be ended on request
// (`kubectl nsdebug sessions kill`, through `nsdebug-agent kill` and serve's control socket).
// Publishing is best effort and off the session's path: a session never waits for, nor fails
// with, the API server.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';

import { ExitCode, SESSION_LABELS, sessionLeaseName, type PublishedSession, type SessionEnded, type SessionRequest } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { apiMessage, type InClusterApi } from './apiserver.js';
import { RUN_DIR } from './audit.js';

export const CONTROL_SOCKET = join(RUN_DIR, 'control.sock');

/** The agent pod itself, as the DaemonSet's downward API names it: the Leases' owner. */
export interface AgentIdentity {
  namespace: string;
  pod: string;
  podUid: string;
  node: string;
}

export function agentIdentity(env = process.env): AgentIdentity | undefined {
  const { NSDEBUG_POD_NAMESPACE: namespace, NSDEBUG_POD_NAME: pod, NSDEBUG_POD_UID: podUid, NSDEBUG_NODE_NAME: node } = env;
  return namespace && pod && podUid && node ? { namespace, pod, podUid, node } : undefined;
}

/** A session's Lease: its labels select it by node and target namespace, its annotation says the rest. */
export function sessionLease(session: PublishedSession, agent: AgentIdentity): Record<string, unknown> {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: sessionLeaseName(session.id),
      namespace: agent.namespace,
      labels: {
        [SESSION_LABELS.session]: 'true',
        [SESSION_LABELS.node]: agent.node,
        ...('pod' in session.target ? { [SESSION_LABELS.targetNamespace]: session.target.namespace } : {}),
        'app.kubernetes.io/part-of': 'nsdebug',
      },
      annotations: { [SESSION_LABELS.session]: JSON.stringify(session) },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: agent.pod, uid: agent.podUid }],
    },
    spec: { holderIdentity: agent.pod, acquireTime: new Date(session.since).toISOString().replace('Z', '000Z') },
  };
}

/** What a session's request and its record (the DebugSession's requester, if any) publish of it. */
export function publishedSession(
  id: string,
  req: SessionRequest,
  record: Record<string, unknown>,
  node: string,
  since: Date,
  recording?: string,
): PublishedSession {
  const [namespace = '', pod = ''] = (req.pod ?? '').split('/');
  const requester = typeof record.requester === 'string' ? record.requester : undefined;
  const debugSession = typeof record.debugSession === 'string' ? record.debugSession : undefined;
  return {
    id,
    node,
    target: req.node ? { node: req.node } : { namespace, pod, container: req.container ?? '' },
    via: debugSession ? 'debugsession' : 'exec',
    ...(requester ? { requester } : {}),
    ...(debugSession ? { debugSession } : {}),
    since: since.toISOString(),
    tty: req.tty,
    command: req.command,
    ...(req.privileged ? { privileged: true } : {}),
    ...(recording ? { recording } : {}),
  };
}

interface Registered {
  session: PublishedSession;
  end: (ended: SessionEnded) => void;
}

/** The live sessions of this serve process; published when an API and the agent's identity are at hand. */
export class SessionRegistry {
  private readonly live = new Map<string, Registered>();

  constructor(private readonly publishAfterMs = 1000) {}

  private publish?: { api: InClusterApi; agent: AgentIdentity; warn: (msg: string, fields: Record<string, unknown>) => void };

  /** From now on, publish each session as a Lease (serve, once it knows its pod). */
  publishTo(publish: NonNullable<SessionRegistry['publish']>): void {
    this.publish = publish;
  }

  /** A fresh session ID: 10 hex digits, also the Lease's name suffix. */
  static newId(): string {
    return randomBytes(5).toString('hex');
  }

  get node(): string | undefined {
    return this.publish?.agent.node;
  }

  /**
   * Register a starting session; end is called if it is killed. Returns its removal. Published
   * once it has lived publishAfterMs: a session of a moment (`-- true`) costs the API server (and
   * the node it shares CPUs with) nothing, one someone works in is listed within a second.
   */
  add(session: PublishedSession, end: (ended: SessionEnded) => void): () => void {
    this.live.set(session.id, { session, end });
    let published: Promise<void> | undefined;
    const timer = this.publish ? setTimeout(() => (published = this.create(session)), this.publishAfterMs) : undefined;
    return () => {
      this.live.delete(session.id);
      clearTimeout(timer);
      void published?.then(() => this.remove(session.id));
    };
  }

  list(): PublishedSession[] {
    return [...this.live.values()].map((r) => r.session);
  }

  /** End session id (`sessions kill`): false when it is not one of ours. */
  kill(id: string, by: string): boolean {
    const found = this.live.get(id);
    if (!found) return false;
    found.end({ reason: 'killed', message: `the session was ended by ${by}` });
    return true;
  }

  /** Leases a previous serve process of this pod left (it died with sessions live): removed at start. */
  async removeStale(): Promise<number> {
    if (!this.publish) return 0;
    const { api, agent } = this.publish;
    const selector = encodeURIComponent(`${SESSION_LABELS.session}=true,${SESSION_LABELS.node}=${agent.node}`);
    const res = await api.request('GET', `${leasesPath(agent)}?labelSelector=${selector}`);
    if (res.status !== 200) throw new Error(`listing this node's session leases: ${apiMessage(res)}`);
    const items = (res.body as { items?: Array<{ metadata?: { name?: string } }> }).items ?? [];
    const names = items.map((i) => i.metadata?.name).filter((n): n is string => !!n && !this.live.has(n.replace(/^.*-/, '')));
    await Promise.all(names.map((name) => api.request('DELETE', `${leasesPath(agent)}/${name}`)));
    return names.length;
  }

  private async create(session: PublishedSession): Promise<void> {
    const { api, agent, warn } = this.publish!;
    try {
      const res = await api.request('POST', leasesPath(agent), sessionLease(session, agent));
      if (res.status !== 201) warn('could not publish a session', { session: session.id, error: apiMessage(res) });
    } catch (err) {
      warn('could not publish a session', { session: session.id, error: (err as Error).message });
    }
  }

  private async remove(id: string): Promise<void> {
    const { api, agent, warn } = this.publish!;
    try {
      const res = await api.request('DELETE', `${leasesPath(agent)}/${sessionLeaseName(id)}`);
      if (res.status !== 200 && res.status !== 404) warn('could not unpublish a session', { session: id, error: apiMessage(res) });
    } catch (err) {
      warn('could not unpublish a session', { session: id, error: (err as Error).message });
    }
  }
}

const leasesPath = (agent: AgentIdentity) => `/apis/coordination.k8s.io/v1/namespaces/${agent.namespace}/leases`;

/** serve's sessions: one registry per process (sessions of the session socket and the session port alike). */
export const liveSessions = new SessionRegistry();

/** serve's control socket: one JSON request per connection, `{"kill": ID, "by": WHO}`, one JSON answer. */
export async function startControlServer(
  registry: SessionRegistry,
  audit: (line: Record<string, unknown>) => void,
  path = CONTROL_SOCKET,
): Promise<Server> {
  rmSync(path, { force: true });
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > 4096) socket.destroy();
      if (!text.includes('\n')) return;
      let answer: Record<string, unknown>;
      try {
        const ask = JSON.parse(text) as { kill?: unknown; by?: unknown };
        const id = typeof ask.kill === 'string' ? ask.kill : '';
        const by = typeof ask.by === 'string' ? ask.by.slice(0, 200) : 'kubectl nsdebug sessions kill';
        const killed = registry.kill(id, by);
        audit({ event: 'kill', session: id, by, killed });
        answer = killed ? { killed: id } : { error: `no live session ${JSON.stringify(id.slice(0, 40))} on this node` };
      } catch {
        answer = { error: 'a malformed control request' };
      }
      socket.end(`${JSON.stringify(answer)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return server;
}

/** `nsdebug-agent kill --session ID`: ask serve to end one of its sessions; NOT_FOUND when it has none by that ID. */
export async function killSession(id: string, by: string, path = CONTROL_SOCKET): Promise<void> {
  const answer = await new Promise<{ killed?: string; error?: string }>((resolve, reject) => {
    const socket = createConnection(path);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ kill: id, by })}\n`));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => {
      try {
        resolve(JSON.parse(text) as { killed?: string; error?: string });
      } catch {
        reject(new NsdebugError('the agent answered the kill with something else than JSON', ExitCode.INTERNAL));
      }
    });
    socket.on('error', (err) =>
      reject(new NsdebugError(`cannot reach this agent's serve process: ${err.message}`, ExitCode.AGENT_UNAVAILABLE)),
    );
  });
  if (answer.error) throw new NsdebugError(answer.error, ExitCode.NOT_FOUND);
}
