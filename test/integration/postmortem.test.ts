// Crashed containers under a real containerd. Post-mortem sessions (`enter --postmortem`): the
// dead container's files as it left them, read-only, with a writable scratch /tmp, in the pod's
// network, and no mount left behind; a mount namespace with nothing of the node in it (a chroot
// escape finds only the snapshot), and the dead container's own user and capabilities, checked
// against what its process had (its log) and its OCI spec (ctr). `enter --wait`: the container's
// next instance is entered as soon as its process runs, even one that lives a second.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { execa } from 'execa';

import { CONTRACT_VERSION, ExitCode } from '../../src/contract.js';
import { TarParser } from '../../src/tar.js';
import { CriClient } from '../support/cri.js';
import { createPod, IMAGES, waitContainerState, type Pod } from '../support/pods.js';
import { shortId } from '../../src/agent/resolve.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AGENT = `${ROOT}/bin/nsdebug-agent.js`;

let cri: CriClient;
let crashed: Pod; // app: wrote its markers, then exited 1; web: still serving the pod's :8080
let restricted: Pod; // app: UID 1000, GID 3000, groups 4000, only NET_BIND_SERVICE, no_new_privs, RuntimeDefault seccomp; exited 3

/** The credential lines of /proc/PID/status that a session must share with the dead container's process. */
const STATUS_LINES = /^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|Seccomp):/;
const DUMP_STATUS = "grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status";

/** `nsdebug-agent enter --postmortem` on a pod's dead container, as the CLI runs it. */
function postmortem(
  pod: Pod,
  command: string[],
  extra: string[] = [],
  target: { container?: string; containerId?: string; podUid?: string; input?: Buffer } = {},
) {
  const container = target.container ?? 'app';
  return execa(
    'node',
    [
      AGENT,
      'enter',
      `--contract=${CONTRACT_VERSION}`,
      `--container-id=${target.containerId ?? pod.container('app').id}`,
      `--pod-uid=${target.podUid ?? pod.podUid}`,
      `--container=${container}`,
      '--postmortem',
      ...extra,
      '--',
      ...command,
    ],
    { reject: false, env: { NSDEBUG_RUNTIME_ENDPOINT: process.env.CONTAINERD_ADDRESS }, ...(target.input ? { input: target.input } : {}) },
  );
}

/**
 * The node's mount table as seen here, without the mounts of containers that other runtimes on
 * this machine (the e2e cluster, an integration tier run side by side) make and remove meanwhile.
 */
const ownMounts = () =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => {
      const point = line.split(' ')[4] ?? '';
      return point.startsWith(`${process.env.NSDEBUG_IT_DIR}/`) || !/\/(io\.containerd\.[^/]+|kubelet\/pods|netns)\//.test(point);
    })
    .join('\n');

/** The lines a container printed on stdout, from its CRI log file (kubelet's format: time stream tag text). */
function containerLog(pod: Pod, container: string): string[] {
  const dir = join(process.env.NSDEBUG_POD_LOG_ROOT!, `${pod.namespace}_${pod.name}_${pod.podUid}`, container);
  return readFileSync(join(dir, '0.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ').slice(3).join(' '));
}

/** What containerd itself holds for a container (`ctr containers info`): its OCI spec and snapshot key. */
async function ctrInfo(id: string): Promise<{
  Spec: { process: { user: { uid: number; gid: number; additionalGids?: number[] } } };
  SnapshotKey: string;
  Snapshotter: string;
}> {
  const address = process.env.CONTAINERD_ADDRESS!.replace(/^unix:\/\//, '');
  const { stdout } = await execa('ctr', ['--address', address, '-n', 'k8s.io', 'containers', 'info', id]);
  return JSON.parse(stdout);
}

/** The top-level names of a container's snapshot, read on the node from its layer directories (ctr snapshots mounts). */
async function snapshotTopLevel(id: string): Promise<string[]> {
  const info = await ctrInfo(id);
  const address = process.env.CONTAINERD_ADDRESS!.replace(/^unix:\/\//, '');
  const { stdout } = await execa('ctr', [
    '--address',
    address,
    '-n',
    'k8s.io',
    'snapshots',
    '--snapshotter',
    info.Snapshotter,
    'mounts',
    '/mnt',
    info.SnapshotKey,
  ]);
  const options = /-o (\S+)/.exec(stdout)?.[1] ?? '';
  const option = (name: string) =>
    options
      .split(',')
      .find((o) => o.startsWith(`${name}=`))
      ?.slice(name.length + 1);
  const layers = [option('upperdir'), ...(option('lowerdir')?.split(':') ?? [])].filter((l): l is string => !!l);
  expect(layers.length).toBeGreaterThan(0);
  return [...new Set(layers.flatMap((dir) => readdirSync(dir)))].sort();
}

/** Mount point → its per-mount options, from a mountinfo text (fields 5 and 6). */
function mountOptions(mountinfo: string): Map<string, string[]> {
  const mounts = new Map<string, string[]>();
  for (const line of mountinfo.split('\n').filter(Boolean)) {
    const fields = line.split(' ');
    mounts.set(fields[4]!, fields[5]!.split(','));
  }
  return mounts;
}

beforeAll(async () => {
  cri = new CriClient();
  crashed = await createPod(cri, {
    name: 'crashed',
    containers: [
      {
        name: 'app',
        image: IMAGES.busybox,
        command: ['sh', '-c', `${DUMP_STATUS}; echo last-words > /tmp/marker-crashed; echo root-write > /state; exit 1`],
      },
      { name: 'web', image: IMAGES.busybox, command: ['httpd', '-f', '-p', '8080', '-h', '/tmp'] },
    ],
  });
  restricted = await createPod(cri, {
    name: 'restricted',
    containers: [
      {
        name: 'app',
        image: IMAGES.busybox,
        command: ['sh', '-c', `${DUMP_STATUS}; exit 3`],
        runAsUser: 1000,
        runAsGroup: 3000,
        supplementalGroups: [4000],
        capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
        noNewPrivs: true,
        seccomp: 'RuntimeDefault',
      },
    ],
  });
  await waitContainerState(cri, crashed.container('app').id, 'CONTAINER_EXITED');
  await waitContainerState(cri, restricted.container('app').id, 'CONTAINER_EXITED');
});

afterAll(async () => {
  await crashed?.remove().catch(() => undefined);
  await restricted?.remove().catch(() => undefined);
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

  test('--postmortem takes no --process, --read-only or --ns, and needs --container', async () => {
    const r = await postmortem(crashed, ['true'], ['--ns=pid']);
    expect(r.exitCode).toBe(ExitCode.USAGE);
    expect(r.stderr.split('\n')).toHaveLength(1);
    const argv = [AGENT, 'enter', `--contract=${CONTRACT_VERSION}`, `--container-id=${crashed.container('app').id}`];
    const unnamed = await execa('node', [...argv, `--pod-uid=${crashed.podUid}`, '--postmortem', '--', 'true'], { reject: false });
    expect([unnamed.exitCode, unnamed.stderr]).toEqual([
      ExitCode.USAGE,
      expect.stringMatching(/^nsdebug-agent: --postmortem needs --pod-uid and --container\b[^\n]*$/),
    ]);
  });
});

describe("cp --postmortem: out of the dead container's last filesystem", () => {
  /** `nsdebug-agent cp --postmortem` as the CLI runs it; stdout as bytes. */
  const copyOut = (pod: Pod, from: string, extra: string[] = []) =>
    execa(
      'node',
      [
        AGENT,
        'cp',
        `--contract=${CONTRACT_VERSION}`,
        `--container-id=${pod.container('app').id}`,
        `--pod-uid=${pod.podUid}`,
        '--postmortem',
        '--container=app',
        `--from=${from}`,
        ...extra,
      ],
      { reject: false, encoding: 'buffer', stripFinalNewline: false, env: { NSDEBUG_RUNTIME_ENDPOINT: process.env.CONTAINERD_ADDRESS } },
    );

  test("a tree as a tar stream: the dead instance's own writes and its image's files; no mount left on the node", async () => {
    const before = ownMounts();
    const r = await copyOut(crashed, '/', ['--recursive']);
    expect(r.exitCode).toBe(0);
    const files = new Map<string, string>();
    let current = '';
    const parser = new TarParser();
    for (const event of [...parser.push(Buffer.from(r.stdout)), ...parser.finish()]) {
      if (event.kind === 'entry' && event.entry.type === 'file') files.set((current = event.entry.path), '');
      else if (event.kind === 'data') files.set(current, files.get(current) + event.chunk.toString());
    }
    expect([files.get('tmp/marker-crashed'), files.get('state'), files.get('marker.txt')]).toEqual([
      'last-words\n',
      'root-write\n',
      'nsdebug-marker\n',
    ]);
    // the snapshot's own /proc, /sys and /dev are empty directories: nothing of the node's
    expect([...files.keys()].filter((p) => /^(proc|sys)\//.test(p))).toEqual([]);
    expect(ownMounts()).toBe(before);
  });

  test('one file: a header line, then its bytes', async () => {
    const ok = await copyOut(crashed, '/tmp/marker-crashed');
    const [header, ...rest] = Buffer.from(ok.stdout).toString().split('\n');
    expect(JSON.parse(header!)).toMatchObject({ path: '/tmp/marker-crashed', size: 11 });
    expect(rest.join('\n')).toBe('last-words\n');
  });
});

describe('enter --postmortem: nothing of the node underneath', () => {
  const markers: string[] = [];
  let escapeBinary: Buffer;

  beforeAll(async () => {
    // Markers on the node, where a session that is only chrooted would find them.
    const tag = randomBytes(6).toString('hex');
    for (const dir of ['/tmp', '/var/tmp', process.env.NSDEBUG_IT_DIR!]) {
      const path = join(dir, `nsdebug-pm-marker-${tag}`);
      writeFileSync(path, 'the node\n');
      markers.push(path);
    }
    const build = mkdtempSync(join(tmpdir(), 'nsdebug-escape-'));
    try {
      await execa('cc', ['-static', '-O1', '-o', join(build, 'escape'), join(ROOT, 'test/fixtures/chroot-escape.c')]);
      escapeBinary = readFileSync(join(build, 'escape'));
    } finally {
      rmSync(build, { recursive: true, force: true });
    }
  });

  afterAll(() => {
    for (const path of markers) rmSync(path, { force: true });
  });

  /** Feed the escape program to a session on stdin, run it from the session's /tmp. */
  const escape = (pod: Pod) =>
    postmortem(pod, ['sh', '-c', 'cd /tmp && cat > escape && chmod 755 escape && ./escape "$@"', 'sh', ...markers], [], {
      input: escapeBinary,
    });

  test('a chroot escape (with the CAP_SYS_CHROOT the container had) lands in the snapshot, never on the node', async () => {
    const r = await escape(crashed);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n');
    // the markers do exist on the node, outside nsdebug
    for (const path of markers) expect(readFileSync(path, 'utf8')).toBe('the node\n');
    expect(lines.filter((l) => !l.startsWith('/ '))).toEqual(markers.map((path) => `${path} No such file or directory`));
    // where the escape ended up: the dead container's own root, as containerd's layers hold it
    const root = lines
      .filter((l) => l.startsWith('/ '))
      .map((l) => l.slice(2))
      .sort();
    expect(root).toEqual(await snapshotTopLevel(crashed.container('app').id));
    expect(r.exitCode).toBe(0);
  });

  test("`ls /` shows only the snapshot; mountinfo holds only the session's mounts, / /dev /tmp nodev,nosuid", async () => {
    const r = await postmortem(crashed, ['sh', '-c', 'ls -a / && echo --- && cat /proc/self/mountinfo']);
    const [listing, mountinfo] = r.stdout.split('\n---\n') as [string, string];
    expect(
      listing
        .split('\n')
        .filter((n) => n !== '.' && n !== '..')
        .sort(),
    ).toEqual(await snapshotTopLevel(crashed.container('app').id));
    const mounts = mountOptions(mountinfo);
    for (const point of ['/', '/dev', '/tmp']) expect(mounts.get(point)).toEqual(expect.arrayContaining(['nodev', 'nosuid']));
    expect(mounts.get('/')).toContain('ro');
    // nothing of the node's mount tree: the root, /tmp, /proc (and its masked paths), /dev and its devices
    const allowed = /^\/(tmp|proc(\/[a-z_-]+)?|dev(\/(null|zero|full|random|urandom|tty|pts|shm))?)?$/;
    expect([...mounts.keys()].filter((point) => !allowed.test(point))).toEqual([]);
    // /proc/sys is the node's kernel: read-only, as in the container
    expect(mounts.get('/proc/sys')).toContain('ro');
    expect(r.exitCode).toBe(0);
  });

  test("the session has the dead container's own credentials and capabilities (its process's, its OCI spec's)", async () => {
    for (const pod of [crashed, restricted]) {
      const id = pod.container('app').id;
      const r = await postmortem(pod, ['sh', '-c', `${DUMP_STATUS}; id -u; id -g`]);
      const lines = r.stdout.split('\n');
      const had = containerLog(pod, 'app');
      // what the container's own process had, from its log: the same, line for line
      expect(lines.filter((l) => STATUS_LINES.test(l))).toEqual(had.filter((l) => STATUS_LINES.test(l)));
      // post-mortem sessions always run with no_new_privs (read-only mode)
      expect(lines).toContain('NoNewPrivs:\t1');
      const { user } = (await ctrInfo(id)).Spec.process;
      expect(lines.slice(-2)).toEqual([String(user.uid), String(user.gid)]);
      expect(r.exitCode).toBe(0);
    }
    const restrictedLines = containerLog(restricted, 'app');
    expect(restrictedLines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^Uid:\t1000\t/),
        'CapEff:\t0000000000000000',
        'CapBnd:\t0000000000000400',
        'Seccomp:\t2',
      ]),
    );
  });

  test("the dead container's seccomp profile, rebuilt from its OCI spec, holds: what RuntimeDefault refuses fails", async () => {
    // containerd's default profile refuses a new user namespace without CAP_SYS_ADMIN; the kernel alone would allow it
    const r = await postmortem(restricted, ['sh', '-c', 'unshare -U true && echo UNSHARED; grep -E "^Seccomp:" /proc/self/status']);
    expect(r.stdout.split('\n')).toEqual(['Seccomp:\t2']);
    expect(r.stderr).toMatch(/unshare: .*Operation not permitted/);
  });

  test("--tty: a terminal of the session's own devpts, owned by the dead container's user", async () => {
    const quote = (arg: string) => `'${arg.replace(/'/g, "'\\''")}'`;
    const argv = [
      'node',
      AGENT,
      'enter',
      `--contract=${CONTRACT_VERSION}`,
      `--container-id=${restricted.container('app').id}`,
      `--pod-uid=${restricted.podUid}`,
      '--container=app',
      '--postmortem',
      '--tty',
      '--',
      'sh',
      '-c',
      'echo "tty=$(tty) owner=$(stat -c "%u %a" $(tty)) uid=$(id -u)"',
    ];
    // script(1) gives the agent a terminal as its stdio, as kubectl exec -t does; its stdin stays
    // open and silent (at EOF script would type ^D into the terminal, echoed amid the output)
    const r = await execa('script', ['-qec', argv.map(quote).join(' '), '/dev/null'], {
      reject: false,
      stdin: 'pipe',
      env: { NSDEBUG_RUNTIME_ENDPOINT: process.env.CONTAINERD_ADDRESS },
    });
    expect(r.stdout).toMatch(/^tty=\/dev\/pts\/0 owner=1000 620 uid=1000\r?$/m);
    expect(r.exitCode).toBe(0);
  });

  test("--tools: nsdebug's busybox, run by fd from outside the snapshot, under the same confinement", async () => {
    const r = await postmortem(restricted, ['sh', '-c', "id -u; grep -E '^CapEff:' /proc/self/status; ls /"], ['--tools']);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual(['1000', 'CapEff:\t0000000000000000']);
    expect(r.stdout.split('\n').slice(2).sort()).toEqual(await snapshotTopLevel(restricted.container('app').id));
    expect(r.exitCode).toBe(0);
  });

  test('without CAP_SYS_CHROOT (the restricted container had none) the escape fails at its first chroot', async () => {
    const r = await escape(restricted);
    expect([r.exitCode, r.stdout]).toEqual([3, 'chroot: Operation not permitted']);
  });
});

describe("enter --postmortem: the container must be the pod's", () => {
  test("another pod's container is refused before anything is mounted", async () => {
    const r = await postmortem(crashed, ['true'], [], { containerId: restricted.container('app').id });
    expect(r.exitCode).toBe(ExitCode.FORBIDDEN);
    expect(r.stderr).toBe(
      `nsdebug-agent: container ${shortId(restricted.container('app').id)} belongs to pod ${restricted.podUid}'s container "app", not to pod ${crashed.podUid}'s container "app": refused`,
    );
  });

  test("the same pod's other container, named wrongly, is refused", async () => {
    const r = await postmortem(crashed, ['true'], [], { container: 'web' });
    expect(r.exitCode).toBe(ExitCode.FORBIDDEN);
    expect(r.stderr).toMatch(
      /^nsdebug-agent: container [0-9a-f]{12} belongs to pod [-0-9a-f]+'s container "app", not to pod [-0-9a-f]+'s container "web": refused$/,
    );
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
