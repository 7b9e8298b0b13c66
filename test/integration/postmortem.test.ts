// Crashed containers under a real containerd. Post-mortem sessions (`enter --postmortem`): the
// dead container's files as it left them, read-only, with a writable scratch /tmp, in the pod's
// network, and no mount left behind. `enter --wait`: the container's next instance is entered
// as soon as its process runs, even one that lives a second.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { execa } from 'execa';

import { CONTRACT_VERSION, ExitCode } from '../../src/contract.js';
import { CriClient } from '../support/cri.js';
import { createPod, IMAGES, waitContainerState, type Pod } from '../support/pods.js';
import { shortId } from '../../src/agent/resolve.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AGENT = `${ROOT}/bin/nsdebug-agent.js`;

let cri: CriClient;
let crashed: Pod; // app: wrote its markers, then exited 1; web: still serving the pod's :8080

/** `nsdebug-agent enter --postmortem` on the crashed app, as the CLI runs it. */
function postmortem(pod: Pod, command: string[], extra: string[] = []) {
  return execa(
    'node',
    [
      AGENT,
      'enter',
      `--contract=${CONTRACT_VERSION}`,
      `--container-id=${pod.container('app').id}`,
      `--pod-uid=${pod.podUid}`,
      '--postmortem',
      ...extra,
      '--',
      ...command,
    ],
    { reject: false, env: { NSDEBUG_RUNTIME_ENDPOINT: process.env.CONTAINERD_ADDRESS } },
  );
}

const ownMounts = () => readFileSync('/proc/self/mountinfo', 'utf8');

beforeAll(async () => {
  cri = new CriClient();
  crashed = await createPod(cri, {
    name: 'crashed',
    containers: [
      {
        name: 'app',
        image: IMAGES.busybox,
        command: ['sh', '-c', 'echo last-words > /tmp/marker-crashed; echo root-write > /state; exit 1'],
      },
      { name: 'web', image: IMAGES.busybox, command: ['httpd', '-f', '-p', '8080', '-h', '/tmp'] },
    ],
  });
  await waitContainerState(cri, crashed.container('app').id, 'CONTAINER_EXITED');
});

afterAll(async () => {
  await crashed?.remove().catch(() => undefined);
  cri.close();
});

describe('enter --postmortem', () => {
  test("the dead container's own writes, read-only, with its image's files", async () => {
    const r = await postmortem(crashed, ['sh', '-c', 'cat /tmp/marker-crashed /state /marker.txt; touch /x 2>&1; echo $?']);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['last-words', 'root-write', 'nsdebug-marker', 'touch: /x: Read-only file system', '1']);
    expect(r.exitCode).toBe(0);
  });

  test("/tmp is a scratch space over the container's own; /proc shows only the session", async () => {
    const r = await postmortem(crashed, [
      'sh',
      '-c',
      'echo scratch > /tmp/new && cat /tmp/new /tmp/marker-crashed; ps -o pid,args > /tmp/ps; cat /tmp/ps',
    ]);
    const [scratch, crashedWrite, header, init, ...rest] = r.stdout.split('\n');
    expect([scratch, crashedWrite]).toEqual(['scratch', 'last-words']);
    expect(header).toMatch(/^PID\s+COMMAND$/);
    expect(init).toMatch(/^\s*1 nsdebug-init\b/);
    // the shell and ps (a busybox applet shown as "{ps} sh …"): nothing of the node's
    expect(rest).toEqual([expect.stringMatching(/^\s*[2-9] .*\bsh -c echo scratch/), expect.stringMatching(/^\s*[2-9] .*\bps\b/)]);
    // nothing was written into the dead container's snapshot
    const again = await postmortem(crashed, ['ls', '/tmp']);
    expect(again.stdout.split('\n')).toEqual(['marker-crashed']);
  });

  test("the pod's network: the live sidecar answers on localhost", async () => {
    const r = await postmortem(crashed, ['sh', '-c', "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 127.0.0.1 8080 | head -1"]);
    expect(r.stdout).toMatch(/^HTTP\/1\.[01] 404 Not Found/);
  });

  test('no mount is left on the node, and the agent sees none', async () => {
    const before = ownMounts();
    await postmortem(crashed, ['true']);
    expect(ownMounts()).toBe(before);
    expect(ownMounts()).not.toContain('/tmp/root');
  });

  test('a container whose filesystem was removed: nothing left to inspect, try --wait', async () => {
    const gone = await createPod(cri, { name: 'gone', containers: [{ name: 'app', image: IMAGES.busybox, command: ['false'] }] });
    try {
      const id = gone.container('app').id;
      await waitContainerState(cri, id, 'CONTAINER_EXITED');
      await cri.removeContainer(id);
      const r = await postmortem(gone, ['true']);
      expect(r.exitCode).toBe(ExitCode.NOT_FOUND);
      expect(r.stderr).toMatch(/^nsdebug-agent: nothing left to inspect: container [0-9a-f]{12} has been removed .*--wait/);
    } finally {
      await gone.remove();
    }
  });

  test('a pod whose sandbox is gone too (Never-restarting, all ended): its files, no network at all', async () => {
    const ended = await createPod(cri, {
      name: 'ended',
      containers: [{ name: 'app', image: IMAGES.busybox, command: ['sh', '-c', 'echo done > /tmp/result'] }],
    });
    try {
      await waitContainerState(cri, ended.container('app').id, 'CONTAINER_EXITED');
      await cri.stopPodSandbox(ended.sandboxId); // what kubelet does once such a pod has ended
      const r = await postmortem(ended, ['sh', '-c', 'cat /tmp/result; tail -n +3 /proc/net/dev | cut -d: -f1']);
      expect([r.exitCode, r.stdout.split('\n').map((l) => l.trim())]).toEqual([0, ['done', 'lo']]);
      expect(r.stderr).toContain("the pod's sandbox is gone too: the session has no network");
    } finally {
      await ended.remove();
    }
  });

  test('--postmortem takes no --process, --read-only or --ns', async () => {
    const r = await postmortem(crashed, ['true'], ['--ns=pid']);
    expect(r.exitCode).toBe(ExitCode.USAGE);
    expect(r.stderr.split('\n')).toHaveLength(1);
  });
});

describe('enter --wait', () => {
  const waitArgv = (pod: Pod, seconds: number, skip: string, command: string[]) => [
    AGENT,
    'enter',
    `--contract=${CONTRACT_VERSION}`,
    `--container-id=${skip}`,
    `--pod-uid=${pod.podUid}`,
    '--container=app',
    `--wait=${seconds}`,
    '--',
    ...command,
  ];
  const env = { NSDEBUG_RUNTIME_ENDPOINT: process.env.CONTAINERD_ADDRESS };

  test('a container that lives one second is caught at its next start; the command runs in it', async () => {
    const flaky = await createPod(cri, {
      name: 'flaky',
      containers: [
        { name: 'app', image: IMAGES.busybox, command: ['sh', '-c', 'echo attempt > /tmp/a; sleep 1; exit 1'] },
        { name: 'other', image: IMAGES.busybox },
      ],
    });
    try {
      const first = flaky.container('app').id;
      await waitContainerState(cri, first, 'CONTAINER_EXITED');
      const session = execa('node', waitArgv(flaky, 30, first, ['sh', '-c', 'cat /tmp/a; tr "\\0" " " < /proc/1/cmdline']), {
        reject: false,
        env,
      });
      await new Promise((r) => setTimeout(r, 1500)); // the agent is watching; kubelet's back-off passes
      const next = await flaky.restart('app');
      const r = await session;
      expect(r.stdout.split('\n')).toEqual(['attempt', 'sh -c echo attempt > /tmp/a; sleep 1; exit 1 ']);
      expect(r.stderr).toBe(`nsdebug-agent: container app started (${shortId(next.id)}): entering it`);
      expect(r.exitCode).toBe(0);
    } finally {
      await flaky.remove();
    }
  });

  test('no start within the time: a clear message and exit 70', async () => {
    const r = await execa('node', waitArgv(crashed, 1, crashed.container('app').id, ['true']), { reject: false, env });
    expect(r.exitCode).toBe(ExitCode.NOT_RUNNING);
    expect(r.stderr).toBe('nsdebug-agent: container app did not start within 1 s; try a longer --timeout');
  });
});
