// The registry of serve's live sessions: each published as a Lease owned by the agent pod and
// removed when it ends, ended on request through the control socket (a real unix socket here),
// and what a dead predecessor left removed at start. The API server is a recording fake (no
// cluster in the unit tier); the e2e tier checks the Leases with kubectl.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { PublishedSession, SessionEnded } from '../../../src/contract.js';
import type { ApiResponse, InClusterApi } from '../../../src/agent/apiserver.js';
import { killSession, publishedSession, SessionRegistry, sessionLease, startControlServer } from '../../../src/agent/live-sessions.js';

const AGENT = { namespace: 'nsdebug-system', pod: 'nsdebug-agent-x1', podUid: 'uid-1', node: 'n1' };
const SINCE = new Date('2026-01-02T03:04:05.678Z');

/** An API server fake that records each request and answers with `answer`. */
function fakeApi(answer: (method: string, path: string) => ApiResponse = (m) => ({ status: m === 'POST' ? 201 : 200, body: {} })) {
  const calls: Array<{ method: string; path: string; body?: unknown }> = [];
  const api: InClusterApi = {
    request: async (method, path, body) => {
      calls.push({ method, path, ...(body !== undefined ? { body } : {}) });
      return answer(method, path);
    },
    watch: () => ({ done: Promise.resolve(0), stop: () => undefined }),
  };
  return { api, calls };
}

const request = { containerId: 'c'.repeat(64), pod: 'shop/web-0', container: 'app', tools: false, tty: true, command: ['sh'] };

test('what a session publishes: its target, how it was authorized, since when, with or without a TTY', () => {
  expect(publishedSession('0123456789', request, {}, 'n1', SINCE)).toEqual({
    id: '0123456789',
    node: 'n1',
    target: { namespace: 'shop', pod: 'web-0', container: 'app' },
    via: 'exec',
    since: '2026-01-02T03:04:05.678Z',
    tty: true,
    command: ['sh'],
  });
  const viaObject = publishedSession('0123456789', request, { requester: 'alice', debugSession: 'shop/nsdebug-abc' }, 'n1', SINCE);
  expect(viaObject).toMatchObject({ via: 'debugsession', requester: 'alice', debugSession: 'shop/nsdebug-abc' });
  expect(publishedSession('0123456789', { ...request, node: 'n1', command: [] }, {}, 'n1', SINCE).target).toEqual({ node: 'n1' });
});

test("a session's Lease: labelled by node and target namespace, annotated with the session, owned by the agent pod", () => {
  const session = publishedSession('0123456789', request, {}, 'n1', SINCE);
  expect(sessionLease(session, AGENT)).toEqual({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: 'nsdebug-session-0123456789',
      namespace: 'nsdebug-system',
      labels: {
        'nsdebug.io/session': 'true',
        'nsdebug.io/node': 'n1',
        'nsdebug.io/target-namespace': 'shop',
        'app.kubernetes.io/part-of': 'nsdebug',
      },
      annotations: { 'nsdebug.io/session': JSON.stringify(session) },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'nsdebug-agent-x1', uid: 'uid-1' }],
    },
    spec: { holderIdentity: 'nsdebug-agent-x1', acquireTime: '2026-01-02T03:04:05.678000Z' },
  });
});

test('a registered session is published, listed, killed with a reason, and unpublished when it ends', async () => {
  const { api, calls } = fakeApi();
  const registry = new SessionRegistry(0);
  registry.publishTo({ api, agent: AGENT, warn: () => undefined });
  const ended: SessionEnded[] = [];
  const session: PublishedSession = publishedSession('aaaaaaaaaa', request, {}, 'n1', SINCE);
  const remove = registry.add(session, (end) => ended.push(end));
  expect(registry.list()).toEqual([session]);
  await new Promise((resolve) => setTimeout(resolve, 10));
  expect(registry.kill('bbbbbbbbbb', 'x')).toBe(false);
  expect(registry.kill('aaaaaaaaaa', 'kubectl nsdebug sessions kill')).toBe(true);
  expect(ended).toEqual([{ reason: 'killed', message: 'the session was ended by kubectl nsdebug sessions kill' }]);
  remove();
  expect(registry.list()).toEqual([]);
  await new Promise((resolve) => setTimeout(resolve, 10));
  expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
    'POST /apis/coordination.k8s.io/v1/namespaces/nsdebug-system/leases',
    'DELETE /apis/coordination.k8s.io/v1/namespaces/nsdebug-system/leases/nsdebug-session-aaaaaaaaaa',
  ]);
});

test('a session of a moment is never published; a refused publish is a warning, never a failed session', async () => {
  const quick = fakeApi();
  const patient = new SessionRegistry(50);
  patient.publishTo({ api: quick.api, agent: AGENT, warn: () => undefined });
  patient.add(publishedSession('aaaaaaaaaa', request, {}, 'n1', SINCE), () => undefined)();
  await new Promise((resolve) => setTimeout(resolve, 80));
  expect(quick.calls).toEqual([]);

  const { api } = fakeApi(() => ({ status: 403, body: { message: 'leases is forbidden' } }));
  const warnings: unknown[] = [];
  const registry = new SessionRegistry(0);
  registry.publishTo({ api, agent: AGENT, warn: (msg, fields) => warnings.push({ msg, ...fields }) });
  const remove = registry.add(publishedSession('aaaaaaaaaa', request, {}, 'n1', SINCE), () => undefined);
  await new Promise((resolve) => setTimeout(resolve, 10));
  remove();
  expect(warnings).toContainEqual({ msg: 'could not publish a session', session: 'aaaaaaaaaa', error: 'leases is forbidden' });
});

test('at start, the leases a dead predecessor on this node left are deleted', async () => {
  const { api, calls } = fakeApi((method) =>
    method === 'GET'
      ? {
          status: 200,
          body: { items: [{ metadata: { name: 'nsdebug-session-1111111111' } }, { metadata: { name: 'nsdebug-session-2222222222' } }] },
        }
      : { status: 200, body: {} },
  );
  const registry = new SessionRegistry();
  registry.publishTo({ api, agent: AGENT, warn: () => undefined });
  expect(await registry.removeStale()).toBe(2);
  expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
    'GET /apis/coordination.k8s.io/v1/namespaces/nsdebug-system/leases?labelSelector=nsdebug.io%2Fsession%3Dtrue%2Cnsdebug.io%2Fnode%3Dn1',
    'DELETE /apis/coordination.k8s.io/v1/namespaces/nsdebug-system/leases/nsdebug-session-1111111111',
    'DELETE /apis/coordination.k8s.io/v1/namespaces/nsdebug-system/leases/nsdebug-session-2222222222',
  ]);
});

test('nsdebug-agent kill reaches serve through its control socket; the kill is audited; an unknown ID is NOT_FOUND', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nsdebug-control-'));
  const path = join(dir, 'control.sock');
  const registry = new SessionRegistry();
  const ended: SessionEnded[] = [];
  registry.add(publishedSession('cccccccccc', request, {}, 'n1', SINCE), (end) => ended.push(end));
  const audited: unknown[] = [];
  const server = await startControlServer(registry, (line) => audited.push(line), path);
  try {
    await killSession('cccccccccc', 'kubectl nsdebug sessions kill', path);
    await expect(killSession('dddddddddd', 'kubectl nsdebug sessions kill', path)).rejects.toMatchObject({
      message: 'no live session "dddddddddd" on this node',
      exitCode: 65,
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
  expect(ended.map((e) => e.reason)).toEqual(['killed']);
  expect(audited).toEqual([
    { event: 'kill', session: 'cccccccccc', by: 'kubectl nsdebug sessions kill', killed: true },
    { event: 'kill', session: 'dddddddddd', by: 'kubectl nsdebug sessions kill', killed: false },
  ]);
});
