// Session recording on the real cluster (install --record hostpath --record-input): a TTY session
// on a real terminal (tmux) is told it is recorded, its recording lands in the node's directory
// (read from outside through the agent pod's own busybox) with what was typed and printed, and
// `kubectl nsdebug replay` shows both again; a session without a TTY is recorded as its argv, byte
// counts and exit code; the audit line names the recording. The agent is installed without
// recording again afterwards.
import { clusterEnv, INSTALL_SETUP_MS, installAgent, kubectl, waitFor } from './helpers/kube.js';
import { agentPodOn, targetNode } from './helpers/node.js';
import { tmuxTerminal } from './helpers/tmux.js';

const env = clusterEnv();
const NODE = targetNode();
const NS = NODE.namespace;
const DIR = '/var/log/nsdebug/recordings';
const text = (v: unknown) => String(v ?? '');
const NOTICE = /this session is recorded \(kubectl nsdebug replay ([0-9a-f]{10}) --node ([a-z0-9.-]+)\)/;

/** A file in the node's recordings directory, read by the agent pod's busybox (outside nsdebug's code). */
const onNode = async (...args: string[]) =>
  kubectl(['-n', 'nsdebug-system', 'exec', await agentPodOn(NODE.name), '--', '/usr/lib/nsdebug/busybox', ...args]);

beforeAll(async () => {
  await installAgent('--record', 'hostpath', '--record-input');
}, INSTALL_SETUP_MS);

afterAll(async () => {
  await installAgent();
}, INSTALL_SETUP_MS);

describe('session recording', () => {
  test('a TTY session is told it is recorded; the recording holds what was typed and printed, and replay shows it', async () => {
    const { start, type, until, screen, kill } = tmuxTerminal(`nsdebug-e2e-rec-${process.pid}`);
    let id = '';
    try {
      expect((await start(100, 30, { PATH: process.env.PATH ?? '', KUBECONFIG: env.kubeconfig })).exitCode).toBe(0);
      await type(`kubectl nsdebug -n ${NS} pod/busybox; echo "EXIT=$?"`);
      await until('the notice', NOTICE);
      const [, noticed, node] = NOTICE.exec(await screen()) ?? [];
      id = noticed ?? '';
      expect(node).toBe(NODE.name);
      await type('echo "printed-$((6*7))"');
      await until('its output', /^printed-42$/m);
      await type('exit 5');
      await until('the exit code', /^EXIT=5$/m);
    } finally {
      await kill();
    }
    // on the node: asciicast v2, what was typed ("i" events, with --record-input) and printed ("o")
    const cast = await waitFor('the recording complete', async () => {
      const r = await onNode('cat', `${DIR}/${id}.cast`);
      return r.exitCode === 0 && text(r.stdout).includes('exit 5') ? text(r.stdout) : undefined;
    });
    const [header, ...events] = cast
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    expect(header).toMatchObject({ version: 2, title: `nsdebug session ${id}: ${NS}/busybox:busybox` });
    const typed = (events as Array<[number, string, string]>)
      .filter((e) => e[1] === 'i')
      .map((e) => e[2])
      .join('');
    expect(typed).toContain('echo "printed-$((6*7))"');
    const printed = (events as Array<[number, string, string]>)
      .filter((e) => e[1] === 'o')
      .map((e) => e[2])
      .join('');
    expect(printed).toContain('printed-42');

    const replay = await kubectl(['nsdebug', 'replay', id, '--node', NODE.name, '--raw']);
    expect(replay.exitCode).toBe(0);
    expect(text(replay.stdout)).toContain('echo "printed-$((6*7))"');
    expect(text(replay.stdout)).toMatch(/printed-42\r?\n/);
    const timed = await kubectl(['nsdebug', 'replay', id, '--node', NODE.name, '--speed', '50']);
    expect([timed.exitCode, text(timed.stderr)]).toEqual([
      0,
      expect.stringMatching(new RegExp(`^nsdebug session ${id}: ${NS}/busybox:busybox, recorded `)),
    ]);
    expect(text(timed.stdout)).toContain('printed-42');
  }, 180_000);

  test('a session without a TTY: its argv, byte counts and exit code, linked from its audit line', async () => {
    const r = await kubectl(['nsdebug', '-n', NS, 'pod/busybox', '--', 'sh', '-c', 'printf 12345; exit 3']);
    expect([r.exitCode, text(r.stdout)]).toEqual([3, '12345']);
    const [, id = ''] = NOTICE.exec(text(r.stderr)) ?? [];
    expect(id).toMatch(/^[0-9a-f]{10}$/);
    const replay = await kubectl(['nsdebug', 'replay', id, '--node', NODE.name]);
    expect(replay.exitCode).toBe(0);
    expect(JSON.parse(text(replay.stdout))).toMatchObject({
      session: id,
      target: `${NS}/busybox:busybox`,
      argv: ['sh', '-c', 'printf 12345; exit 3'],
      bytes: { stdin: 0, stdout: 5 },
      exitCode: 3,
    });
    const file = await onNode('stat', '-c', '%a %s', `${DIR}/${id}.json`);
    expect(text(file.stdout)).toMatch(/^600 \d+$/);
    const log = await kubectl(['-n', 'nsdebug-system', 'logs', await agentPodOn(NODE.name), '--since=2m']);
    const audit = text(log.stdout)
      .split('\n')
      .filter((l) => l.includes(`"session":"${id}"`) && l.includes('"msg":"session"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit).toEqual([expect.objectContaining({ session: id, recording: id, exitCode: 3 })]);
  }, 120_000);
});
