// Post-mortem sessions on the real cluster: `kubectl nsdebug` on a container that is not running
// opens its last filesystem (the crashed instance's own writes included), read-only, in the pod's
// network, and says so first, with the exit code and the tail of the last log.
import { rmSync, writeFileSync } from 'node:fs';

import { CriClient } from '../support/cri.js';
import {
  busyboxPod,
  clusterEnv,
  E2E_LABEL,
  INSTALL_SETUP_MS,
  installAgent,
  kubectl,
  kubectlJson,
  type PodJson,
  waitFor,
  waitForBackOff,
} from './helpers/kube.js';
import { nodeContainerd, POD_WAIT_MS, slow, targetNode } from './helpers/node.js';

const env = clusterEnv();
const NODE = targetNode();
const NS = NODE.namespace;
/** A test that makes a fixture pod: its waits, and two minutes for the rest. */
const POD_TEST_MS = 2 * POD_WAIT_MS + 120_000;

/** A real CRI client on the target node's containerd, for fn. */
async function withNodeCri<T>(fn: (cri: CriClient) => Promise<T>): Promise<T> {
  const containerd = await nodeContainerd(NODE.name, env.containerdAddress);
  const cri = new CriClient(containerd.address);
  try {
    return await fn(cri);
  } finally {
    cri.close();
    containerd.close();
  }
}
const nsdebug = (args: string[], opts: Parameters<typeof kubectl>[1] = {}) => kubectl(['nsdebug', '-n', NS, ...args], opts);
const lines = (v: unknown) =>
  String(v ?? '')
    .split('\n')
    .filter(Boolean);

/** A restricted-compliant pod that runs `script` once (restartPolicy Never) in busybox. */
const oneShotPod = (name: string, script: string, memory?: string) => busyboxPod(name, NS, script, { memory });

async function createAndWaitTerminated(pod: ReturnType<typeof oneShotPod>): Promise<PodJson> {
  const r = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
  if (r.exitCode !== 0) throw new Error(`kubectl apply ${pod.metadata.name}: ${String(r.stderr)}`);
  return waitFor(
    `pod ${pod.metadata.name} terminated`,
    async () => {
      const p = await kubectlJson<PodJson>(['-n', NS, 'get', 'pod', pod.metadata.name]);
      const state = p.status.containerStatuses?.[0]?.state;
      if (state?.terminated) return p;
      // what the timeout's message says, when kubelet never gets there
      throw new Error(`phase ${p.status.phase}, state ${JSON.stringify(state ?? null)}`);
    },
    POD_WAIT_MS,
  );
}

beforeAll(async () => {
  await installAgent();
}, INSTALL_SETUP_MS);

afterAll(async () => {
  await kubectl(['-n', NS, 'delete', 'pod', '-l', `${E2E_LABEL}=true`, '--grace-period=0', '--wait=false']);
});

describe('kubectl nsdebug on a container that is not running: a post-mortem session', () => {
  test(
    "CrashLoopBackOff: the crashed instance's marker, read-only, the pod's network, announced with exit code and log",
    async () => {
      await waitFor(
        'crashloop restarted at least once',
        async () => {
          const s = (await kubectlJson<PodJson>(['-n', NS, 'get', 'pod', 'crashloop'])).status.containerStatuses?.[0];
          return !s?.state.running && (s?.restartCount ?? 0) >= 1 && s?.lastState.terminated ? s : undefined;
        },
        POD_WAIT_MS,
      );
      const svc = await kubectlJson<{ spec: { clusterIP: string } }>(['-n', 'default', 'get', 'service', 'kubernetes']);
      const script = [
        'cat /tmp/marker-crashed',
        'touch /x 2>&1',
        // a Service through the pod's network: the API server answers plain HTTP on its TLS port
        `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${svc.spec.clusterIP} 443 | tail -1`,
      ].join('; ');
      const r = await nsdebug(['pod/crashloop', '--', 'sh', '-c', script]);
      expect(r.exitCode).toBe(0);
      const out = lines(r.stdout);
      expect(out[0]).toMatch(/^crashed-at-\d+$/);
      expect(out[1]).toBe('touch: /x: Read-only file system');
      expect(out[2]).toBe('Client sent an HTTP request to an HTTPS server.');
      expect(lines(r.stderr)).toEqual([
        expect.stringMatching(
          /^container app is not running \((CrashLoopBackOff|Error), exit code 1, \d+ restarts?\); opening a post-mortem session on its last filesystem \(read-only\) in the pod's network$/,
        ),
        // waiting (CrashLoopBackOff): the log is the previous instance's; terminated (Error): the current one's
        expect.stringMatching(/^last log lines( \(--previous\))?:$/),
        '  crashloop: exiting 1',
      ]);
    },
    POD_TEST_MS,
  );

  test(
    'a Completed container: its files as it left them; an interactive shell from the toolbox or its own',
    async () => {
      const pod = await createAndWaitTerminated(oneShotPod('completed', 'echo finished > /tmp/result; echo all done'));
      // the pod has ended: kubelet records it, then stops its sandbox (and with it the pod's network)
      await waitFor(
        'pod completed Succeeded',
        async () => (await kubectlJson<PodJson>(['-n', NS, 'get', 'pod', 'completed'])).status.phase === 'Succeeded',
      );
      await withNodeCri((cri) =>
        waitFor('its sandbox stopped', async () => {
          const sandboxes = await cri.listPodSandbox({ labelSelector: { 'io.kubernetes.pod.uid': pod.metadata.uid } });
          return sandboxes.length > 0 && sandboxes.every((sb) => sb.state === 'SANDBOX_NOTREADY');
        }),
      );
      const r = await nsdebug(['pod/completed'], { input: 'cat /tmp/result\nexit 4\n' });
      expect(r.exitCode).toBe(4);
      expect(lines(r.stdout)).toEqual(['finished']);
      expect(lines(r.stderr)).toEqual([
        'container app is not running (Completed, exit code 0, 0 restarts); opening a post-mortem shell on its last filesystem (read-only), without network (the pod has ended)',
        'last log lines:',
        '  all done',
        "nsdebug-agent: the pod's sandbox is gone too: the session has no network",
      ]);
    },
    POD_TEST_MS,
  );

  test(
    'an OOMKilled container is opened the same way, its reason announced',
    async () => {
      // dd reads into one 64 MiB buffer: past the 16 MiB limit the kernel kills it. Under the systemd
      // cgroup driver systemd may remove the container's scope before containerd reads its OOM count,
      // and kubelet then says Error (containerd skips its own OOMKilled test there, commit bdff34ef6):
      // the fixture is made again, up to three times, until kubelet says OOMKilled.
      let pod: PodJson | undefined;
      let reason: string | undefined;
      for (let attempt = 1; attempt <= 3 && reason !== 'OOMKilled'; attempt++) {
        pod = await createAndWaitTerminated(
          oneShotPod(`oomkilled-${attempt}`, 'echo before-oom > /tmp/progress; dd if=/dev/zero of=/dev/null bs=64M count=1', '16Mi'),
        );
        reason = pod.status.containerStatuses?.[0]?.state.terminated?.reason;
      }
      const r = await nsdebug([`pod/${pod?.metadata.name}`, '--', 'cat', '/tmp/progress']);
      expect([r.exitCode, lines(r.stdout)]).toEqual([0, ['before-oom']]);
      expect(lines(r.stderr)[0]).toMatch(new RegExp(`^container app is not running \\(${reason}, exit code \\d+, 0 restarts\\)`));
      expect(reason).toBe('OOMKilled');
    },
    3 * POD_WAIT_MS + 120_000,
  );

  test(
    'a dead container already removed from the node: nothing left to inspect, try --wait',
    async () => {
      const pod = await createAndWaitTerminated(oneShotPod('removed', 'true'));
      const id = pod.status.containerStatuses?.[0]?.state.terminated?.containerID ?? '';
      await withNodeCri((cri) => cri.removeContainer(id.replace(/^containerd:\/\//, '')));
      const r = await nsdebug(['pod/removed', '--', 'true']);
      expect(r.exitCode).toBe(65);
      expect(lines(r.stderr)).toContainEqual(
        expect.stringMatching(
          /nothing left to inspect: container [0-9a-f]{12} has been removed from the node with its filesystem; use --wait/,
        ),
      );
    },
    POD_TEST_MS,
  );
});

describe('kubectl nsdebug --wait: the next start of a crash-looping container, entered alive', () => {
  test(
    'a container that lives two seconds between back-offs is caught; the command runs in it',
    async () => {
      const pod = oneShotPod('flaky', `echo attempt-$(cat /proc/uptime) > /tmp/a; sleep ${slow(2000) / 1000}; exit 1`);
      pod.spec.restartPolicy = 'Always';
      expect((await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) })).exitCode).toBe(0);
      await waitForBackOff(NS, 'flaky', POD_WAIT_MS);
      const r = await nsdebug([
        'pod/flaky',
        '--wait',
        '--timeout',
        '90s',
        '--',
        'sh',
        '-c',
        'cat /tmp/a; cat /proc/1/cmdline | tr "\\0" " "',
      ]);
      expect(r.exitCode).toBe(0);
      expect(lines(r.stdout)).toEqual([expect.stringMatching(/^attempt-[\d.]+ [\d.]+$/), expect.stringMatching(/^sh -c echo attempt-/)]);
      expect(lines(r.stderr)).toEqual([
        `waiting up to 90 s for container app of pod ${NS}/flaky to start…`,
        expect.stringMatching(/^nsdebug-agent: container app started \([0-9a-f]{12}\): entering it$/),
      ]);
    },
    POD_TEST_MS,
  );

  test(
    "nothing of the node underneath, and the dead container's own user and capabilities",
    async () => {
      const marker = `/tmp/nsdebug-e2e-node-marker-${process.pid}`;
      writeFileSync(marker, 'node\n');
      try {
        // the container logs its own confinement before it crashes: what the session must have
        await createAndWaitTerminated(oneShotPod('pm-confined', 'grep -E "^(Uid|Gid|CapEff|CapPrm|CapBnd):" /proc/self/status; exit 2'));
        const logged = lines((await kubectl(['-n', NS, 'logs', 'pm-confined'])).stdout);
        expect(logged).toHaveLength(5);
        const r = await nsdebug([
          'pod/pm-confined',
          '--',
          'sh',
          '-c',
          `grep -E "^(Uid|Gid|CapEff|CapPrm|CapBnd):" /proc/self/status; cat ${marker} /proc/1/root${marker} 2>&1; ls /`,
        ]);
        expect(r.exitCode).toBe(0);
        const out = lines(r.stdout);
        expect(out.slice(0, 5)).toEqual(logged);
        expect(out.slice(5, 7)).toEqual([
          `cat: can't open '${marker}': No such file or directory`,
          // the session init (PID 1 of its own PID namespace) is root: its root is not even open to the session
          expect.stringMatching(new RegExp(`^cat: can't open '/proc/1/root${marker}': (No such file or directory|Permission denied)$`)),
        ]);
        // the busybox image's root, not the node's
        expect(out.slice(7)).toEqual(expect.arrayContaining(['bin', 'etc', 'sbin']));
        expect(out.slice(7)).not.toContain('work');
      } finally {
        rmSync(marker, { force: true });
      }
    },
    POD_TEST_MS,
  );

  test(
    "the container's termination message and log are shown escaped: no escape sequence reaches the terminal",
    async () => {
      // ESC [2J clears the screen, OSC 52 sets the clipboard, CR rewrites the line: all written by the container
      const hostile = String.raw`printf 'fine\033[2J\033]52;c;ZWNobyBwd25lZA==\007\rrm' > /dev/termination-log; printf 'log\033[31mred\n'; exit 3`;
      await createAndWaitTerminated(oneShotPod('hostile', hostile));
      const r = await nsdebug(['pod/hostile', '--', 'true']);
      expect(r.exitCode).toBe(0);
      const stderr = String(r.stderr);
      expect([...stderr].filter((c) => c !== '\n' && c < ' ')).toEqual([]);
      // the pod has ended: its sandbox may be stopped already (then the agent says so) or not yet
      const sandboxNote = "nsdebug-agent: the pod's sandbox is gone too: the session has no network";
      expect(lines(stderr).filter((l) => l !== sandboxNote)).toEqual([
        expect.stringMatching(/^container app is not running \(Error, exit code 3/),
        // (whitespace, CR included, is folded to spaces in one-line messages)
        String.raw`termination message: fine\x1b[2J\x1b]52;c;ZWNobyBwd25lZA==\x07 rm`,
        'last log lines:',
        String.raw`  log\x1b[31mred`,
      ]);
    },
    POD_TEST_MS,
  );

  test('--timeout without --wait is a usage error', async () => {
    const r = await nsdebug(['pod/busybox', '--timeout', '10s', '--', 'true']);
    expect(r.exitCode).toBe(64);
    expect(lines(r.stderr)).toEqual(['error: all of the following must be provided when using --timeout: --wait']);
  });
});
