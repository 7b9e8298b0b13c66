// `kubectl nsdebug sessions` and `sessions kill` on the real cluster: a running session is listed
// (target, node, TTY, command), from the Lease its agent published, which kubectl sees too; killing
// it ends the session's processes in the container, tells its user why, removes the Lease and is
// audited in the agent's log.
import { execa } from 'execa';

import { clusterEnv, INSTALL_SETUP_MS, installAgent, kubectl, waitFor } from './helpers/kube.js';
import { agentPodOn, targetNode } from './helpers/node.js';

clusterEnv();
const NODE = targetNode();
const NS = NODE.namespace;
const text = (v: unknown) => String(v ?? '');

interface Listed {
  id: string;
  node: string;
  target: { namespace: string; pod: string; container: string };
  via: string;
  tty: boolean;
  command: string[];
}

const leases = async () =>
  text((await kubectl(['-n', 'nsdebug-system', 'get', 'leases', '-l', 'nsdebug.io/session=true', '-o', 'name'])).stdout)
    .split('\n')
    .filter(Boolean);
const sleeping = async (args: string) =>
  text((await kubectl(['-n', NS, 'exec', 'busybox', '--', 'ps', '-o', 'args'])).stdout)
    .split('\n')
    .includes(args);

beforeAll(async () => {
  await installAgent();
}, INSTALL_SETUP_MS);

describe('kubectl nsdebug sessions', () => {
  test('lists a running session; sessions kill ends it, tells its user, and leaves nothing', async () => {
    const cli = execa('kubectl', ['nsdebug', '-n', NS, 'pod/busybox', '--', 'sleep', '3598'], { reject: false });
    await waitFor('the session running in the container', () => sleeping('sleep 3598'));
    // an agent publishes a session once it has lived a second, so the list may lag the container
    const listedSession = async () =>
      (JSON.parse(text((await kubectl(['nsdebug', 'sessions', '-n', NS, '-o', 'json'])).stdout) || '[]') as Listed[]).find(
        (s) => s.command.join(' ') === 'sleep 3598',
      );
    await waitFor('the session listed', async () => (await listedSession()) !== undefined, 20_000);
    const session = await listedSession();
    expect(session).toMatchObject({
      node: NODE.name,
      target: { namespace: NS, pod: 'busybox', container: 'busybox' },
      via: 'exec',
      tty: false,
    });
    const id = session!.id;
    // the object behind the list, as kubectl sees it: a Lease owned by the agent pod
    expect(await leases()).toContain(`lease.coordination.k8s.io/nsdebug-session-${id}`);
    const owner = await kubectl([
      '-n',
      'nsdebug-system',
      'get',
      'lease',
      `nsdebug-session-${id}`,
      '-o',
      'jsonpath={.metadata.ownerReferences[0].kind}',
    ]);
    expect(text(owner.stdout)).toBe('Pod');
    const table = await kubectl(['nsdebug', 'sessions', '-n', NS]);
    expect(text(table.stdout).split('\n')[0]).toMatch(/^ID +USER +TARGET +NODE +AGE +TTY +RECORDED$/);
    expect(text(table.stdout)).toMatch(new RegExp(`^${id} +\\(exec\\) +${NS}/busybox:busybox +${NODE.name} +\\d+s +no +no$`, 'm'));
    // another namespace's view does not show it; -A does
    const elsewhere = await kubectl(['nsdebug', 'sessions', '-n', 'kube-system', '-o', 'json']);
    expect((JSON.parse(text(elsewhere.stdout)) as Listed[]).map((s) => s.id)).not.toContain(id);
    const all = await kubectl(['nsdebug', 'sessions', '-A', '-o', 'json']);
    expect((JSON.parse(text(all.stdout)) as Listed[]).map((s) => s.id)).toContain(id);

    const kill = await kubectl(['nsdebug', 'sessions', 'kill', id]);
    expect([kill.exitCode, text(kill.stderr)]).toEqual([0, `session ${id} (${NS}/busybox:busybox, node ${NODE.name}) ended`]);
    const ended = await cli;
    expect(ended.exitCode).toBe(74);
    expect(ended.stderr).toContain('the session was ended by kubectl nsdebug sessions kill');
    await waitFor('the session ended in the container', async () => !(await sleeping('sleep 3598')), 20_000);
    await waitFor('its lease removed', async () => !(await leases()).some((l) => l.endsWith(id)), 20_000);
    // the log of the agent on the session's node (`logs daemonset/…` reads one pod of many)
    const log = await kubectl(['-n', 'nsdebug-system', 'logs', await agentPodOn(NODE.name), '--since=2m']);
    const lines = text(log.stdout)
      .split('\n')
      .filter((l) => l.includes(id))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ msg: 'control', event: 'kill', session: id, killed: true }),
        expect.objectContaining({ msg: 'session', session: id, ended: 'killed' }),
      ]),
    );
    // a second kill: gone
    const again = await kubectl(['nsdebug', 'sessions', 'kill', id]);
    expect([again.exitCode, text(again.stderr)]).toEqual([65, `error: no live session ${id} (see \`kubectl nsdebug sessions -A\`)`]);
  }, 120_000);

  test('a bad ID is refused in one line, exit 64', async () => {
    const r = await kubectl(['nsdebug', 'sessions', 'kill', '../x']);
    expect([r.exitCode, text(r.stderr)]).toEqual([
      64,
      'error: name a session by its ID (10 hex digits, as `kubectl nsdebug sessions` lists them), not "../x"',
    ]);
  }, 30_000);
});
