// Nothing is left behind, whatever ends a session (issue 13), here by what happens away from the
// node: the network between the CLI and the API server cut, the API server restarted, the
// DebugSession deleted, the agent's maximum session lifetime reached. None depends on the node
// type, so the tier e2e runs this suite and e2e-vm does not (test/run-tiers.sh).
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { kubectl, ROLLOUT_MS } from './helpers/kube.js';
import {
  agentReady,
  auditLine,
  gone,
  outcome,
  restored,
  startAll,
  startSession,
  RESTART_TITLE,
  restartedMidSession,
  NS,
  env,
  dir,
  CUT_NETNS,
  useLivenessTarget,
} from './helpers/liveness.js';
import { slow } from './helpers/node.js';

useLivenessTarget();

test(
  'the network between the CLI and the API server cut without a FIN: everything ends within 30 s, the CLI says so (75)',
  async () => {
    // a network namespace of the test's own, routed to the API server through a veth pair
    // the admin kubeconfig names 127.0.0.1, which inside the namespace is its own loopback: use the node's IP
    const nodeIp = readFileSync(join(process.env.NSDEBUG_CLUSTER_DIR ?? '/var/lib/nsdebug-cluster', 'node-ip'), 'utf8').trim();
    const kubeconfig = join(dir, 'via-node-ip.kubeconfig');
    writeFileSync(
      kubeconfig,
      readFileSync(env.kubeconfig, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:/g, `server: https://${nodeIp}:`),
    );
    const ip = (...args: string[]) => execa('ip', args);
    await execa('ip', ['netns', 'del', CUT_NETNS], { reject: false });
    await ip('netns', 'add', CUT_NETNS);
    await ip('link', 'add', 'nsdbg-cut0', 'type', 'veth', 'peer', 'name', 'nsdbg-cut1');
    await ip('link', 'set', 'nsdbg-cut1', 'netns', CUT_NETNS);
    await ip('addr', 'add', '10.250.77.1/30', 'dev', 'nsdbg-cut0');
    await ip('link', 'set', 'nsdbg-cut0', 'up');
    const inNs = (...args: string[]) => execa('ip', ['netns', 'exec', CUT_NETNS, ...args]);
    await inNs('ip', 'addr', 'add', '10.250.77.2/30', 'dev', 'nsdbg-cut1');
    await inNs('ip', 'link', 'set', 'nsdbg-cut1', 'up');
    await inNs('ip', 'link', 'set', 'lo', 'up');
    await inNs('ip', 'route', 'add', `${nodeIp}/32`, 'via', '10.250.77.1');

    const sessions = await startAll({ name: CUT_NETNS, kubeconfig });
    // drop every packet both ways: no FIN, no RST, as when a laptop sleeps or leaves the Wi-Fi
    await inNs('iptables', '-A', 'OUTPUT', '-j', 'DROP');
    await inNs('iptables', '-A', 'INPUT', '-j', 'DROP');
    const cutAt = Date.now();
    for (const s of sessions) expect(await gone(s, 35_000, cutAt)).toBeLessThanOrEqual(30_000);
    for (const s of sessions) {
      const seen = await outcome(s);
      expect(seen.code).toBe(75);
      expect(seen.lastLine).toMatch(
        /^error: lost the connection to the nsdebug agent on node .*: nothing heard for \d+ s; the agent ends the session's processes/,
      );
      if (s.tty) expect(restored(seen.sttyAfter)).toBe(true);
      // the agent's heartbeat timeout, or the API server's own websocket ping timeout, closing the exec first
      expect(['heartbeat lost', 'client gone']).toContain((await auditLine(s)).ended);
    }
  },
  slow(120_000),
);

test(RESTART_TITLE.replace('%s', 'kube-apiserver'), () => restartedMidSession('kube-apiserver'), slow(300_000));

test.each([[false], [true]])(
  'the DebugSession deleted mid-session (revoked), tty %s: the session ends within 5 s (74)',
  async (tty) => {
    const s = await startSession('session-auth', tty);
    const revokedAt = Date.now();
    const deleted = await kubectl(['-n', NS, 'delete', 'debugsessions.nsdebug.io', '--all', '--wait=false']);
    expect(deleted.exitCode).toBe(0);
    expect(await gone(s, slow(15_000), revokedAt)).toBeLessThanOrEqual(slow(5000));
    const seen = await outcome(s);
    expect(seen.code).toBe(74);
    expect(seen.lastLine).toMatch(new RegExp(`ended the session: DebugSession ${NS}/\\S+ was deleted: the session is revoked$`));
    if (tty) expect(restored(seen.sttyAfter)).toBe(true);
    expect(await auditLine(s)).toEqual(expect.objectContaining({ ended: 'revoked' }));
  },
  slow(120_000),
);

test(
  "the agent's maximum session lifetime (serve --max-session): sessions end when they reach it (74)",
  async () => {
    const args = (value: string) =>
      JSON.stringify([{ op: 'replace', path: '/spec/template/spec/containers/0/args', value: ['serve', `--max-session=${value}`] }]);
    const patched = await kubectl(['-n', 'nsdebug-system', 'patch', 'ds/nsdebug-agent', '--type=json', '-p', args('15s')]);
    expect(patched.exitCode).toBe(0);
    try {
      await agentReady();
      const sessions = await startAll();
      const startedAt = Date.now();
      for (const s of sessions) expect(await gone(s, 40_000, startedAt)).toBeLessThanOrEqual(20_000);
      for (const s of sessions) {
        const seen = await outcome(s);
        expect(seen.code).toBe(74);
        expect(seen.lastLine).toMatch(/ended the session: the session reached the agent's maximum session lifetime \(15s\)$/);
        if (s.tty) expect(restored(seen.sttyAfter)).toBe(true);
        expect(await auditLine(s)).toEqual(expect.objectContaining({ ended: 'max lifetime' }));
      }
    } finally {
      await kubectl(['-n', 'nsdebug-system', 'patch', 'ds/nsdebug-agent', '--type=json', '-p', args('12h')]);
      await agentReady();
    }
  },
  // two rollouts over every node, and the sessions between them
  2 * ROLLOUT_MS + slow(120_000),
);
