// `kubectl nsdebug sessions` and `sessions kill` against recording fakes of the sessions client
// (no cluster in the unit tier; the e2e tier lists and kills real sessions): the table kubectl
// users expect, the namespace filter, JSON, and which way a kill goes.
import { Writable } from 'node:stream';

import type { PublishedSession } from '../../../src/contract.js';
import type { KubeConnection } from '../../../src/kube/config.js';
import type { SessionsClient } from '../../../src/kube/sessions.js';
import { formatAge, formatSessionsTable, runSessions, runSessionsKill, type SessionsCluster } from '../../../src/cli/sessions.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const viaExec: PublishedSession = {
  id: '0123456789',
  node: 'n1',
  target: { namespace: 'shop', pod: 'web-0', container: 'app' },
  via: 'exec',
  since: '2026-01-01T11:58:30Z',
  tty: true,
  command: [],
};
const viaObject: PublishedSession = {
  id: 'abcdefabcd',
  node: 'n2',
  target: { namespace: 'shop', pod: 'api-1', container: 'api' },
  via: 'debugsession',
  requester: 'alice@example.com',
  debugSession: 'shop/nsdebug-x7k2p',
  since: '2026-01-01T11:59:50Z',
  tty: false,
  command: ['cat', '/etc/hosts'],
  recording: 'abcdefabcd',
};

const sink = () => {
  let text = '';
  return Object.assign(
    new Writable({
      write(chunk: Buffer, _e, done) {
        text += chunk.toString();
        done();
      },
    }),
    { text: () => text },
  );
};

function fakeCluster(sessions: PublishedSession[]) {
  const calls: string[] = [];
  const client: SessionsClient = {
    list: async (agentNamespace, targetNamespace) => {
      calls.push(`list ${agentNamespace} ${targetNamespace ?? '*'}`);
      return sessions.filter((s) => !targetNamespace || ('namespace' in s.target && s.target.namespace === targetNamespace));
    },
    get: async (_ns, id) => sessions.find((s) => s.id === id),
    killThroughAgent: async (agent, id) => void calls.push(`kill ${id} via ${agent.namespace}/${agent.pod}`),
    revoke: async (debugSession) => void calls.push(`delete DebugSession ${debugSession}`),
    recording: async () => Buffer.alloc(0),
  };
  const cluster: SessionsCluster = {
    loadKubeConfig: async (opts) => ({ namespace: opts.namespace ?? 'shop' }) as KubeConnection,
    sessionsClient: async () => client,
    agentClient: async () => ({
      listAgentPods: async (_ns, node) => [
        {
          metadata: { name: `agent-${node}`, creationTimestamp: new Date('2026-01-01T00:00:00Z') as unknown as string },
          spec: { nodeName: node },
          status: {
            phase: 'Running',
            conditions: [{ type: 'Ready', status: 'True' }],
            containerStatuses: [{ name: 'agent', ready: true, restartCount: 0, state: { running: {} } }],
          },
        } as never,
      ],
    }),
  };
  return { cluster, calls };
}

test('AGE as kubectl shows it', () => {
  expect(
    ['2026-01-01T11:59:15Z', '2026-01-01T11:50:00Z', '2026-01-01T07:00:00Z', '2025-12-25T12:00:00Z'].map((s) => formatAge(s, NOW)),
  ).toEqual(['45s', '10m', '5h', '7d']);
});

test('a row per session: who (a DebugSession requester, else exec), target, node, age, TTY, recording; wide adds how and what', () => {
  expect(formatSessionsTable([viaExec, viaObject], false, NOW)).toBe(
    [
      'ID          USER               TARGET          NODE  AGE  TTY  RECORDED',
      '0123456789  (exec)             shop/web-0:app  n1    90s  yes  no',
      'abcdefabcd  alice@example.com  shop/api-1:api  n2    10s  no   abcdefabcd',
      '',
    ].join('\n'),
  );
  expect(
    formatSessionsTable([viaExec, viaObject], true, NOW)
      .split('\n')
      .map((l) => l.replace(/ +/g, ' ')),
  ).toEqual([
    'ID USER TARGET NODE AGE TTY RECORDED VIA COMMAND',
    '0123456789 (exec) shop/web-0:app n1 90s yes no exec (shell)',
    'abcdefabcd alice@example.com shop/api-1:api n2 10s no abcdefabcd DebugSession shop/nsdebug-x7k2p cat /etc/hosts',
    '',
  ]);
});

test('what an agent published is shown, never obeyed by the terminal', () => {
  const hostile = { ...viaExec, command: ['echo', '\x1b]0;owned\x07'] };
  expect(formatSessionsTable([hostile], true, NOW)).not.toContain('\x1b');
});

test('the current namespace by default, every one with -A; JSON as published; a line on stderr when there is none', async () => {
  const { cluster, calls } = fakeCluster([viaExec, viaObject]);
  const out = sink();
  const err = sink();
  await runSessions({ output: 'json' }, { stdout: out, stderr: err }, cluster, NOW);
  expect(JSON.parse(out.text())).toEqual([viaExec, viaObject]);
  await runSessions({ 'all-namespaces': true }, { stdout: sink(), stderr: err }, cluster, NOW);
  const none = sink();
  await runSessions({ namespace: 'other' }, { stdout: sink(), stderr: none }, cluster, NOW);
  expect(none.text()).toBe('No live sessions in namespace other (-A for every namespace).\n');
  expect(calls).toEqual(['list nsdebug-system shop', 'list nsdebug-system *', 'list nsdebug-system other']);
});

test('sessions kill: through the agent of its node for an exec session, by deleting its DebugSession for the other', async () => {
  const { cluster, calls } = fakeCluster([viaExec, viaObject]);
  const err = sink();
  await runSessionsKill({ id: '0123456789' }, { stdout: sink(), stderr: err }, cluster);
  await runSessionsKill({ id: 'abcdefabcd' }, { stdout: sink(), stderr: err }, cluster);
  expect(calls).toEqual(['kill 0123456789 via nsdebug-system/agent-n1', 'delete DebugSession shop/nsdebug-x7k2p']);
  expect(err.text()).toBe('session 0123456789 (shop/web-0:app, node n1) ended\nsession abcdefabcd (shop/api-1:api, node n2) ended\n');
});

test('sessions kill refuses a malformed ID (64) and names an unknown one (65)', async () => {
  const { cluster } = fakeCluster([]);
  await expect(runSessionsKill({ id: '../../x' }, { stdout: sink(), stderr: sink() }, cluster)).rejects.toMatchObject({ exitCode: 64 });
  await expect(runSessionsKill({ id: 'ffffffffff' }, { stdout: sink(), stderr: sink() }, cluster)).rejects.toMatchObject({
    exitCode: 65,
    message: 'no live session ffffffffff (see `kubectl nsdebug sessions -A`)',
  });
});
