// Nothing is left behind, whatever ends a session (issue 13), here by what happens on the
// session's node: the CLI killed, the node's kubelet restarted, the agent pod deleted, the agent's
// serve killed. Each ending is tried on four sessions at once (helpers/liveness.ts); on a VM node
// (emulated CPUs, the tier e2e-vm) the time bounds are scaled by slow().
import { execa } from 'execa';

import { kubectl, kubectlJson, type PodJson, waitFor } from './helpers/kube.js';
import {
  agentReady,
  auditLine,
  CASES,
  gone,
  outcome,
  restored,
  startAll,
  startSession,
  RESTART_TITLE,
  restartedMidSession,
  NODE,
  useLivenessTarget,
} from './helpers/liveness.js';
import { agentPodOn, onNode, pgrepOn, slow } from './helpers/node.js';

useLivenessTarget();

describe.each([
  ['SIGKILL', 'KILL', undefined],
  ['SIGHUP (terminal closed)', 'HUP', 129],
  ['SIGTERM', 'TERM', 143],
] as const)('the CLI killed with %s', (_what, signal, ttyCode) => {
  test.each(CASES)(
    '%s, tty %s: every process of the session ends within 5 s',
    async (mode, tty) => {
      const s = await startSession(mode, tty);
      // killing the process kubectl started is killing kubectl: it exec'd the plugin
      const killedAt = Date.now();
      process.kill(s.cliPid, `SIG${signal}`);
      expect(await gone(s, slow(5000), killedAt)).toBeLessThanOrEqual(slow(5000));
      const seen = await outcome(s);
      if (tty) {
        expect(seen.code).toBe(ttyCode ?? 137);
        if (signal !== 'KILL') expect(restored(seen.sttyAfter)).toBe(true);
      } else expect(seen.signal ?? seen.code).toBe(`SIG${signal}`);
      expect(await auditLine(s)).toEqual(expect.objectContaining({ ended: 'client gone' }));
    },
    // on emulated CPUs under load, a session's start alone may take most of a minute
    slow(60_000),
  );
});

test(RESTART_TITLE.replace('%s', 'kubelet'), () => restartedMidSession('kubelet'), slow(300_000));

test(
  'the agent pod deleted: its sessions end within 5 s, each CLI says the agent is stopping (74)',
  async () => {
    const sessions = await startAll();
    const pod = { metadata: { name: await agentPodOn(NODE.name) } };
    // the pod's log goes with it: follow it from now on
    let followed = '';
    const follow = execa('kubectl', ['-n', 'nsdebug-system', 'logs', '-f', pod.metadata.name], { reject: false });
    follow.stdout?.on('data', (chunk: Buffer) => (followed += chunk.toString()));
    const deletedAt = Date.now();
    const deletion = kubectl(['-n', 'nsdebug-system', 'delete', 'pod', pod.metadata.name, '--wait=false']);
    for (const s of sessions) expect(await gone(s, slow(15_000), deletedAt)).toBeLessThanOrEqual(slow(5000));
    await deletion;
    for (const s of sessions) {
      const seen = await outcome(s);
      expect(seen.code).toBe(74);
      expect(seen.lastLine).toMatch(
        /^error: the nsdebug agent on node .* ended the session: the agent on this node is shutting down \(SIGTERM\)$/,
      );
      if (s.tty) expect(restored(seen.sttyAfter)).toBe(true);
    }
    for (const s of sessions) expect(await auditLine(s, () => followed)).toEqual(expect.objectContaining({ ended: 'agent stopping' }));
    follow.kill();
    await agentReady();
  },
  slow(300_000),
);

test(
  "the agent's container killed (SIGKILL of serve, the container restarts): its sessions end within 5 s",
  async () => {
    const sessions = await startAll();
    const agent = await agentPodOn(NODE.name);
    const restarts = async () =>
      (await kubectlJson<PodJson>(['-n', 'nsdebug-system', 'get', 'pod', agent])).status.containerStatuses?.[0]?.restartCount ?? 0;
    const before = await restarts();
    const [serve] = await pgrepOn(NODE.name, 'nsdebug-agent\\.js serve|nsdebug-agent serve');
    expect(serve).toBeDefined();
    const killedAt = Date.now();
    expect((await onNode(NODE.name, ['kill', '-KILL', String(serve)])).exitCode).toBe(0);
    for (const s of sessions) expect(await gone(s, slow(15_000), killedAt)).toBeLessThanOrEqual(slow(5000));
    for (const s of sessions) {
      const seen = await outcome(s);
      expect(seen.code).not.toBe(0);
      if (s.tty) expect(restored(seen.sttyAfter)).toBe(true);
    }
    // the kubelet restarted the container (until it reports that, the pod still shows the old
    // container's Ready, on a slow node for many seconds); then the new one must become Ready
    await waitFor('the agent container restarted', async () => (await restarts()) > before, slow(60_000), 500);
    await agentReady();
  },
  slow(300_000),
);
