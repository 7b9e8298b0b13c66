// nsdebug-agent against real containers: pods made through containerd's CRI the way kubelet
// makes them (test/support/pods.ts), entered by the built agent exactly as the CLI will run it.
// Every case runs twice: through a per-session Node process (bin/nsdebug-agent.js), and through
// the native entry point handing the session to a resident `serve` (as in the agent image).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { execa } from 'execa';

import { CONTRACT_VERSION, ExitCode, type ProcessInfo } from '../../src/contract.js';
import { CriClient } from '../support/cri.js';
import { IMAGES, MARKERS, createPod, stopContainer, type Pod } from '../support/pods.js';

const AGENT = new URL('../../bin/nsdebug-agent.js', import.meta.url).pathname;
const NATIVE_ENTRY = new URL('../../native/nsdebug-agent', import.meta.url).pathname;

interface Mode {
  name: string;
  argv: string[];
  env: Record<string, string>;
  /** what the client sees when it is sent SIGTERM mid-session */
  onSigterm: { exitCode: number; message: string };
}

const runDir = mkdtempSync('/tmp/nsdebug-it-run-');
let serve: ChildProcess;
const MODES: Mode[] = [
  {
    name: 'per-session Node process',
    argv: ['node', AGENT],
    env: {},
    onSigterm: { exitCode: 128 + 9, message: 'session ended: the agent received SIGTERM' },
  },
  {
    name: 'native entry point + resident serve',
    argv: [NATIVE_ENTRY],
    env: { NSDEBUG_RUN_DIR: runDir },
    onSigterm: { exitCode: 128 + 15, message: '' },
  },
];

let cri: CriClient;
let web: Pod; // busybox, besteffort
let distroless: Pod; // no shell at all
let readonly: Pod; // readOnlyRootFilesystem, burstable, runs as uid 1000
let shared: Pod; // shareProcessNamespace, guaranteed, two containers
let restricted: Pod; // UID 1000, GID 3000, group 2000, capabilities drop ALL, RuntimeDefault seccomp, no privilege escalation
let rootDropped: Pod; // root, the runtime's default capabilities but NET_RAW, MKNOD and SYS_CHROOT, RuntimeDefault seccomp, privilege escalation allowed

/** Host PIDs whose command line is exactly one of `commands` (e.g. "sleep 1001"). */
function processesMatching(...commands: string[]): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (commands.includes(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim())) found.push(Number(entry));
    } catch {
      // exited
    }
  }
  return found;
}

async function waitFor(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return true;
    await sleep(50);
  }
  return predicate();
}

/** Capability numbers from <linux/capability.h>. */
const CAP = { NET_RAW: 13n, SYS_CHROOT: 18n, MKNOD: 27n } as const;

/** The confinement lines of a /proc/PID/status text, as the kernel prints them. */
function confinementOf(status: string): Record<string, string> {
  const keys = ['Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp', 'Seccomp_filters'];
  const lines = new Map(status.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
  return Object.fromEntries(keys.map((k) => [k, lines.get(k) ?? '(missing)']));
}

async function startServe(): Promise<ChildProcess> {
  const child = spawn('node', [AGENT, 'serve'], { env: { ...process.env, NSDEBUG_RUN_DIR: runDir }, stdio: ['ignore', 'pipe', 'inherit'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  if (!(await waitFor(() => log.includes('"msg":"ready"'), 10_000))) throw new Error(`serve did not become ready:\n${log}`);
  return child;
}

beforeAll(async () => {
  serve = await startServe();
  cri = new CriClient();
  [web, distroless, readonly, shared] = await Promise.all([
    createPod(cri, { name: 'web', containers: [{ name: 'app', image: IMAGES.busybox, env: { GREETING: 'hello' }, workingDir: '/tmp' }] }),
    createPod(cri, { name: 'distroless', image: IMAGES.distroless }),
    createPod(cri, { name: 'readonly', image: IMAGES.busybox, qos: 'burstable', readOnlyRootfs: true, runAsUser: 1000 }),
    createPod(cri, {
      name: 'shared',
      qos: 'guaranteed',
      shareProcessNamespace: true,
      containers: [
        { name: 'app', image: IMAGES.busybox },
        { name: 'sidecar', image: IMAGES.busybox, command: ['sleep', '3600'] },
      ],
    }),
  ]);
  [restricted, rootDropped] = await Promise.all([
    createPod(cri, {
      name: 'restricted',
      containers: [
        {
          name: 'app',
          image: IMAGES.busybox,
          runAsUser: 1000,
          runAsGroup: 3000,
          supplementalGroups: [2000],
          capabilities: { drop: ['ALL'] },
          seccomp: 'RuntimeDefault',
          noNewPrivs: true,
        },
      ],
    }),
    // A seccomp filter without no_new_privs: it is installed while CAP_SYS_ADMIN is still held.
    createPod(cri, {
      name: 'root-dropped',
      containers: [
        { name: 'app', image: IMAGES.busybox, capabilities: { drop: ['NET_RAW', 'MKNOD', 'SYS_CHROOT'] }, seccomp: 'RuntimeDefault' },
      ],
    }),
  ]);
});

afterAll(async () => {
  serve?.kill('SIGTERM');
  await Promise.all(
    [web, distroless, readonly, shared, restricted, rootDropped].filter(Boolean).map((p) => p.remove().catch(() => undefined)),
  );
  cri.close();
  rmSync(runDir, { recursive: true, force: true });
});

const target = (pod: Pod, container?: string) => [`--container-id=${pod.container(container).id}`, `--pod-uid=${pod.podUid}`];

/** Run an agent subcommand in a mode, as the CLI does through the exec stream. */
function agent(mode: Mode, argv: string[], options: Record<string, unknown> = {}) {
  const [file, ...rest] = mode.argv;
  return execa(file!, [...rest, ...argv], { reject: false, env: mode.env, ...options });
}

for (const mode of MODES) {
  describe(mode.name, () => {
    /** Run `nsdebug-agent enter` with a command, as the CLI does through the exec stream. */
    function enter(pod: Pod, command: string[], extra: string[] = [], input?: Buffer | string) {
      return agent(mode, ['enter', `--contract=${CONTRACT_VERSION}`, ...target(pod), ...extra, '--', ...command], {
        encoding: 'buffer',
        stripFinalNewline: false,
        ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
      });
    }

    const text = (b: unknown) => Buffer.from(b as Uint8Array).toString('utf8');

    describe('entering a running container', () => {
      test('the container sees itself: its own PIDs, only its processes, its files and its hostname', async () => {
        const r = await enter(web, ['sh', '-c', 'echo pid=$$; ps -o pid,args; cat /marker.txt; hostname']);
        expect(r.exitCode).toBe(0);
        const out = text(r.stdout);
        // A PID of the container's namespace, far below the host's (tens of thousands here).
        expect(Number(/pid=(\d+)/.exec(out)?.[1])).toBeLessThan(1000);
        // ps inside lists the container's init as PID 1, then only this session's processes: its
        // init (the subreaper that leaves no zombie behind), the shell, and ps (forked by the shell).
        const processes = out
          .split('\n')
          .filter((l) => /^\s*\d+\s/.test(l))
          .map((l) => l.trim().split(/\s+/).slice(1).join(' '));
        expect(processes).toEqual([
          'sleep infinity',
          'nsdebug-init',
          expect.stringMatching(/^sh -c echo pid=/),
          expect.stringMatching(/ps/),
        ]);
        expect(out).toMatch(/^\s*1\s+sleep infinity$/m);
        expect(out).toContain(MARKERS.busybox);
        expect(out.trim().split('\n').at(-1)).toBe('web');
      });

      test("the command gets the target's environment and working directory", async () => {
        const r = await enter(web, ['sh', '-c', 'echo "$GREETING:$(pwd)"']);
        expect(text(r.stdout)).toBe('hello:/tmp\n');
      });

      test("the command's exit code is the agent's exit code", async () => {
        expect((await enter(web, ['sh', '-c', 'exit 7'])).exitCode).toBe(7);
        expect((await enter(web, ['sh', '-c', 'kill -TERM $$'])).exitCode).toBe(128 + 15);
      });

      test('10 MB of random bytes through cat arrive intact, and stdin EOF reaches the command', async () => {
        const data = randomBytes(10 * 1024 * 1024);
        const r = await enter(web, ['cat'], [], data);
        expect(r.exitCode).toBe(0);
        expect(Buffer.compare(Buffer.from(r.stdout as unknown as Uint8Array), data)).toBe(0);
      });

      test('stderr stays stderr', async () => {
        const r = await enter(web, ['sh', '-c', 'echo out; echo err >&2']);
        expect(text(r.stdout)).toBe('out\n');
        expect(text(r.stderr)).toBe('err\n');
      });

      test('--ns joins only the listed namespaces', async () => {
        const r = await enter(web, ['sh', '-c', 'hostname; readlink /proc/self/ns/pid'], ['--ns=pid,mnt']);
        expect(r.exitCode).toBe(0);
        const [hostname, pidNs] = text(r.stdout).trim().split('\n');
        expect(hostname).not.toBe('web'); // the UTS namespace stayed the node's
        expect(pidNs).toBe(readlinkSync(`/proc/${web.container().pid}/ns/pid`)); // the PID namespace is the container's
      });

      test('a read-only root filesystem: entering works, writes fail as in the container', async () => {
        const r = await enter(readonly, ['sh', '-c', 'cat /marker.txt; touch /x 2>&1; id -u']);
        expect(r.exitCode).toBe(0);
        expect(text(r.stdout)).toContain(MARKERS.busybox);
        expect(text(r.stdout)).toMatch(/Read-only file system/);
        // The session is the container's user, as kubectl exec would be.
        expect(text(r.stdout).trim().split('\n').at(-1)).toBe('1000');
      });

      test('shareProcessNamespace: the pod shares PIDs, each container keeps its own filesystem', async () => {
        const sidecar = shared.container('sidecar');
        const r = await agent(mode, ['enter', ...target(shared, 'sidecar'), '--', 'sh', '-c', 'readlink /proc/self/ns/mnt; ps -o args']);
        const [mntInside, ...ps] = r.stdout.split('\n');
        // Entered the sidecar's own mount namespace, though pause is PID 1 of the shared namespace.
        expect(mntInside).toBe(readlinkSync(`/proc/${sidecar.pid}/ns/mnt`));
        expect(ps.join('\n')).toContain('sleep 3600');
        expect(ps.join('\n')).toContain('sleep infinity'); // the app container's init, same PID namespace
      });
    });

    describe("the session is confined like the process it enters (checked against the node's /proc)", () => {
      test("a restricted pod: the session has PID 1's IDs, groups, capability sets, no_new_privs and seccomp filter", async () => {
        const r = await enter(restricted, ['cat', '/proc/self/status']);
        expect(text(r.stderr)).toBe('');
        expect(r.exitCode).toBe(0);
        const pid1 = confinementOf(readFileSync(`/proc/${restricted.container().pid}/status`, 'utf8'));
        expect(pid1).toMatchObject({
          Uid: '1000\t1000\t1000\t1000',
          Gid: '3000\t3000\t3000\t3000',
          CapEff: '0000000000000000',
          NoNewPrivs: '1',
          Seccomp: '2',
        });
        expect(pid1.Groups!.split(' ')).toContain('2000');
        expect(confinementOf(text(r.stdout))).toEqual(pid1);
      });

      test('a restricted pod: mknod, unshare -m and raising privileges all fail', async () => {
        const r = await enter(restricted, [
          'sh',
          '-c',
          'mknod /tmp/disk b 7 0 2>/dev/null; echo mknod=$?; unshare -m true 2>/dev/null; echo unshare=$?; mount -t tmpfs none /tmp 2>/dev/null; echo mount=$?',
        ]);
        expect(text(r.stdout)).toMatch(/^mknod=[1-9]\d*\nunshare=[1-9]\d*\nmount=[1-9]\d*\n$/);
        expect(existsSync(`/proc/${restricted.container().pid}/root/tmp/disk`)).toBe(false);
      });

      test('--tools: the toolbox runs under the same confinement', async () => {
        const r = await enter(restricted, ['cat', '/proc/self/status'], ['--tools']);
        expect(r.exitCode).toBe(0);
        expect(confinementOf(text(r.stdout))).toEqual(confinementOf(readFileSync(`/proc/${restricted.container().pid}/status`, 'utf8')));
      });

      test("a root pod with dropped capabilities: the session is root with the pod's capabilities, not the agent's", async () => {
        const r = await enter(rootDropped, ['sh', '-c', 'cat /proc/self/status; mknod /tmp/d b 7 0 2>/dev/null; echo mknod=$?']);
        expect(r.exitCode).toBe(0);
        const session = confinementOf(text(r.stdout));
        expect(session).toEqual(confinementOf(readFileSync(`/proc/${rootDropped.container().pid}/status`, 'utf8')));
        expect(session).toMatchObject({ Uid: '0\t0\t0\t0', NoNewPrivs: '0', Seccomp: '2' });
        for (const cap of [CAP.NET_RAW, CAP.MKNOD, CAP.SYS_CHROOT]) expect(BigInt(`0x${session.CapEff}`) & (1n << cap)).toBe(0n);
        expect(text(r.stdout)).toMatch(/mknod=[1-9]/);
      });

      test('--user 0 in a root pod with dropped capabilities still lacks them; a non-root --user has none at all', async () => {
        const asRoot = confinementOf(text((await enter(rootDropped, ['cat', '/proc/self/status'], ['--user=0'])).stdout));
        const pid1 = confinementOf(readFileSync(`/proc/${rootDropped.container().pid}/status`, 'utf8'));
        // The target's IDs and sets; --user sets no supplementary groups.
        expect(asRoot).toEqual({ ...pid1, Groups: '' });
        const asUser = confinementOf(text((await enter(rootDropped, ['cat', '/proc/self/status'], ['--user=4242:4343'])).stdout));
        expect(asUser).toMatchObject({
          Uid: '4242\t4242\t4242\t4242',
          Gid: '4343\t4343\t4343\t4343',
          Groups: '',
          CapPrm: '0000000000000000',
          CapEff: '0000000000000000',
          CapAmb: '0000000000000000',
          CapBnd: pid1.CapBnd,
          Seccomp: '2',
          Seccomp_filters: pid1.Seccomp_filters,
        });
      });

      test("--user 0 in a UID 1000 pod: root in name, with the pod's (empty) capabilities and its seccomp filter", async () => {
        const r = await enter(
          restricted,
          ['sh', '-c', 'cat /proc/self/status; mknod /tmp/d b 7 0 2>/dev/null; echo mknod=$?'],
          ['--user=0'],
        );
        expect(confinementOf(text(r.stdout))).toMatchObject({
          Uid: '0\t0\t0\t0',
          CapEff: '0000000000000000',
          NoNewPrivs: '1',
          Seccomp: '2',
        });
        expect(text(r.stdout)).toMatch(/mknod=[1-9]/);
      });

      test("--privileged: the agent's full privileges (root, the agent's capabilities, no seccomp)", async () => {
        const r = await enter(restricted, ['cat', '/proc/self/status'], ['--privileged']);
        expect(r.exitCode).toBe(0);
        const agentOwn = confinementOf(readFileSync('/proc/self/status', 'utf8'));
        expect(confinementOf(text(r.stdout))).toMatchObject({
          Uid: '0\t0\t0\t0',
          CapEff: agentOwn.CapEff,
          CapBnd: agentOwn.CapBnd,
          Seccomp: '0',
          NoNewPrivs: '0',
        });
      });

      test("--read-only with the target's capabilities cannot be remounted writable, and gains no privileges", async () => {
        const r = await enter(
          rootDropped,
          [
            'sh',
            '-c',
            'mount -o remount,rw / 2>/dev/null; echo remount=$?; touch /x 2>&1; grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status',
          ],
          ['--read-only'],
        );
        expect(text(r.stdout)).toMatch(/^remount=[1-9]\d*\n.*Read-only file system\nNoNewPrivs:\t1\nSeccomp:\t2\n$/);
      });

      test("the session's init, still privileged inside the target, keeps only CAP_KILL and the session cgroup", async () => {
        const session = enter(restricted, ['sleep', '1033']);
        try {
          expect(await waitFor(() => processesMatching('sleep 1033').length === 1, 5000)).toBe(true);
          const status = (pid: number | string) => readFileSync(`/proc/${pid}/status`, 'utf8');
          const init = /^PPid:\s+(\d+)$/m.exec(status(processesMatching('sleep 1033')[0]!))![1]!;
          expect(status(init)).toMatch(/^Name:\tnsdebug-init$/m);
          expect(confinementOf(status(init))).toMatchObject({
            Uid: '0\t0\t0\t0',
            CapPrm: '0000000000000020',
            CapEff: '0000000000000020',
            CapBnd: '0000000000000020',
          });
          const fds = readdirSync(`/proc/${init}/fd`).map((fd) => readlinkSync(`/proc/${init}/fd/${fd}`));
          expect(fds.filter((f) => !f.endsWith('/cgroup.procs'))).toEqual([]);
        } finally {
          processesMatching('sleep 1033').forEach((pid) => process.kill(pid, 'SIGKILL'));
          await session;
        }
      });

      test('a target whose seccomp filter cannot be copied (already traced): the session fails, it never runs unconfined', async () => {
        const hostPid = restricted.container().pid;
        const tracer = spawn('strace', ['-qq', '-e', 'trace=none', '-p', String(hostPid)], { stdio: 'ignore' });
        try {
          expect(await waitFor(() => /^TracerPid:\s+[1-9]/m.test(readFileSync(`/proc/${hostPid}/status`, 'utf8')), 5000)).toBe(true);
          const r = await enter(restricted, ['sh', '-c', 'echo ran']);
          expect(text(r.stdout)).toBe('');
          expect(r.exitCode).toBe(ExitCode.ENTER_FAILED);
          expect(text(r.stderr)).toMatch(
            /cannot copy the seccomp filter of pid \d+: .*a session never runs without the target's seccomp filter/,
          );
        } finally {
          tracer.kill('SIGINT');
          await new Promise((resolve) => tracer.once('exit', resolve));
        }
        // Detached again: the container runs on, and sessions work.
        expect((await enter(restricted, ['true'])).exitCode).toBe(0);
      });
    });

    describe('containers without a shell', () => {
      test('the default shell falls back to the toolbox, whose ls reads the container root', async () => {
        const r = await enter(distroless, [], [], 'ls /; cat /marker.txt; exit 4\n');
        expect(r.exitCode).toBe(4);
        expect(text(r.stdout)).toContain('app');
        expect(text(r.stdout)).toContain(MARKERS.distroless);
        expect(text(r.stderr)).toContain('no shell');
      });

      test('--tools runs toolbox applets and the container binaries', async () => {
        const r = await enter(distroless, ['ls', '/'], ['--tools']);
        expect(r.exitCode).toBe(0);
        expect(text(r.stdout).split('\n')).toContain('app');
      });

      test('a missing command exits 127 with a hint', async () => {
        const r = await enter(distroless, ['ls', '/']);
        expect(r.exitCode).toBe(ExitCode.COMMAND_NOT_FOUND);
        expect(text(r.stderr).trim()).toMatch(/^nsdebug-agent: ls: not found in container [0-9a-f]{12}; .*--tools$/);
      });
    });

    describe('nsdebug-agent ps', () => {
      test('the same process, two PIDs: host PID ↔ PID 1 inside', async () => {
        const r = await execa('node', [AGENT, 'ps', ...target(web), '-o', 'json']);
        const processes = JSON.parse(r.stdout) as ProcessInfo[];
        const init = processes.find((p) => p.hostPid === web.container().pid);
        expect(init).toMatchObject({ nsPids: [web.container().pid, 1], nestLevel: 0, user: 'root' });
        expect(processes.every((p) => p.nsPids.length === 2)).toBe(true);
      });

      test('the table names the columns', async () => {
        const r = await execa('node', [AGENT, 'ps', ...target(web)]);
        expect(r.stdout.split('\n')[0]).toMatch(/^HOST PID\s+PID\s+NESTED PID\s+USER\s+STAT\s+START\s+COMMAND$/);
        expect(r.stdout).toContain(String(web.container().pid));
      });
    });

    describe('bad targets and arguments fail cleanly', () => {
      test.each([
        [
          'an unknown container ID',
          ['enter', `--container-id=${'0'.repeat(64)}`, '--', 'true'],
          ExitCode.NOT_FOUND,
          /no running container 000000000000 on this node/,
        ],
        [
          'a malformed container ID',
          ['enter', '--container-id=xyz', '--', 'true'],
          ExitCode.USAGE,
          /--container-id must be 64 lowercase hex digits/,
        ],
        [
          'a bad --ns value',
          ['enter', `--container-id=${'0'.repeat(64)}`, '--ns=pid,bogus', '--', 'true'],
          ExitCode.USAGE,
          /unknown namespace kind "bogus"/,
        ],
        [
          'a newer contract',
          ['enter', `--contract=${CONTRACT_VERSION + 1}`, `--container-id=${'0'.repeat(64)}`],
          ExitCode.CONTRACT_MISMATCH,
          /speaks contract version/,
        ],
      ])('%s', async (_name, argv, code, message) => {
        const r = await agent(mode, argv);
        expect(r.exitCode).toBe(code);
        expect(r.stderr).toMatch(message);
        expect(r.stderr.split('\n')).toHaveLength(1); // one line, no stack trace
      });

      test('the right container under the wrong pod UID is refused', async () => {
        const r = await agent(mode, ['enter', `--container-id=${web.container().id}`, `--pod-uid=${distroless.podUid}`, '--', 'true']);
        expect(r.exitCode).toBe(ExitCode.NOT_FOUND);
        expect(r.stderr).toContain(`does not belong to pod ${distroless.podUid}`);
      });

      test('a stopped container is not running', async () => {
        const gone = await createPod(cri, { name: 'gone', image: IMAGES.busybox });
        try {
          await stopContainer(cri, gone.container().id);
          const r = await enter(gone, ['true']);
          expect(r.exitCode).toBe(ExitCode.NOT_FOUND);
          expect(text(r.stderr)).toContain('no running container');
        } finally {
          await gone.remove();
        }
      });
    });

    describe('zero residue', () => {
      test('processes the user backgrounded die when the command exits, and leave no zombie', async () => {
        const r = await enter(web, ['sh', '-c', 'sleep 1001 & setsid sleep 1002 & echo started']);
        expect(text(r.stdout)).toBe('started\n');
        expect(await waitFor(() => processesMatching('sleep 1001', 'sleep 1002').length === 0, 5000)).toBe(true);
        // Nothing was reparented to the container's PID 1 (sleep, which never reaps): no zombies.
        const after = await enter(web, ['ps', '-o', 'stat,args']);
        expect(text(after.stdout)).not.toMatch(/^Z/m);
      });

      test("a command that cannot be run (127, 126) leaves no zombie under the container's PID 1 either", async () => {
        for (let i = 0; i < 5; i++) {
          expect((await enter(web, ['no-such-command-here'])).exitCode).toBe(127);
          expect((await enter(web, ['/etc/hostname'])).exitCode).toBe(126);
        }
        // every process in the container's PID namespace, as the kernel shows their state
        const states = (await enter(web, ['sh', '-c', 'cat /proc/[0-9]*/stat'])).stdout;
        expect(
          text(states)
            .split('\n')
            .filter((l) => / Z /.test(l)),
        ).toEqual([]);
      });

      test('killing the agent with SIGKILL mid-session leaves no session process within 5 s', async () => {
        const session = agent(mode, [
          'enter',
          ...target(web),
          '--',
          'sh',
          '-c',
          'sleep 1011 & setsid sleep 1012 & echo started; sleep 1013',
        ]);
        await new Promise<void>((resolve) => session.stdout!.on('data', (d: Buffer) => d.toString().includes('started') && resolve()));
        expect(await waitFor(() => processesMatching('sleep 1011', 'sleep 1012', 'sleep 1013').length === 3, 5000)).toBe(true);
        session.kill('SIGKILL');
        await session;
        expect(await waitFor(() => processesMatching('sleep 1011', 'sleep 1012', 'sleep 1013').length === 0, 5000)).toBe(true);
        // The container itself is untouched.
        expect(existsSync(`/proc/${web.container().pid}`)).toBe(true);
      });

      test('SIGTERM to the agent ends the session', async () => {
        const session = agent(mode, ['enter', ...target(web), '--', 'sh', '-c', 'echo started; sleep 1021']);
        await new Promise<void>((resolve) => session.stdout!.on('data', (d: Buffer) => d.toString().includes('started') && resolve()));
        session.kill('SIGTERM');
        const r = await session;
        expect(r.exitCode ?? (r.signal === 'SIGTERM' ? 128 + 15 : r.signal)).toBe(mode.onSigterm.exitCode);
        expect(r.stderr).toContain(mode.onSigterm.message);
        expect(await waitFor(() => processesMatching('sleep 1021').length === 0, 5000)).toBe(true);
      });
    });

    describe('an interactive session on a real terminal', () => {
      const tmux = (...args: string[]) => execFileSync('tmux', ['-L', 'nsdebug-it', ...args], { encoding: 'utf8' });
      const screen = () => tmux('capture-pane', '-p', '-t', 'session');
      const until = async (pattern: RegExp) => {
        if (!(await waitFor(() => pattern.test(screen()), 5000))) throw new Error(`screen never matched ${pattern}:\n${screen()}`);
      };

      afterEach(() => {
        try {
          tmux('kill-server');
        } catch {
          // already gone
        }
      });

      test('prompt, tty, ^C, resize, exit code', async () => {
        const env = Object.entries(mode.env).map(([k, v]) => `${k}=${v}`);
        const command = ['env', ...env, ...mode.argv, 'enter', ...target(web), '--tty'].join(' ');
        tmux('new-session', '-d', '-s', 'session', '-x', '80', '-y', '24', `${command}; echo EXIT=$?; sleep 60`);
        await until(/[#$] ?$/m); // tmux trims the prompt's trailing space
        tmux('send-keys', '-t', 'session', 'tty; stty size', 'Enter');
        await until(/^\/dev\/pts\/\d+$/m);
        await until(/^24 80$/m);
        tmux('resize-window', '-t', 'session', '-x', '100', '-y', '30');
        tmux('send-keys', '-t', 'session', 'clear; stty size', 'Enter');
        await until(/^30 100$/m);
        tmux('send-keys', '-t', 'session', 'sleep 1031', 'Enter');
        expect(await waitFor(() => processesMatching('sleep 1031').length > 0, 5000)).toBe(true);
        tmux('send-keys', '-t', 'session', 'C-c', '');
        expect(await waitFor(() => processesMatching('sleep 1031').length === 0, 5000)).toBe(true);
        tmux('send-keys', '-t', 'session', 'echo status=$?', 'Enter');
        await until(/^status=130$/m); // killed by SIGINT from the terminal, as ^C does
        tmux('send-keys', '-t', 'session', 'exit 3', 'Enter');
        await until(/EXIT=3/);
      });

      test("in a restricted pod the terminal is the session user's, and job control works", async () => {
        const env = Object.entries(mode.env).map(([k, v]) => `${k}=${v}`);
        const command = ['env', ...env, ...mode.argv, 'enter', ...target(restricted), '--tty'].join(' ');
        tmux('new-session', '-d', '-s', 'session', '-x', '80', '-y', '24', `${command}; echo EXIT=$?; sleep 60`);
        await until(/[#$] ?$/m);
        tmux('send-keys', '-t', 'session', 'echo "me=$(id -u) tty=$(stat -c %u $(tty))"', 'Enter');
        await until(/^me=1000 tty=1000$/m);
        tmux('send-keys', '-t', 'session', 'sleep 1032', 'Enter');
        expect(await waitFor(() => processesMatching('sleep 1032').length > 0, 5000)).toBe(true);
        tmux('send-keys', '-t', 'session', 'C-c', '');
        expect(await waitFor(() => processesMatching('sleep 1032').length === 0, 5000)).toBe(true);
        tmux('send-keys', '-t', 'session', 'exit 5', 'Enter');
        await until(/EXIT=5/);
      });
    });
  });
}

describe('the resident serve', () => {
  test('killed with SIGKILL mid-session, it leaves no session process within 5 s', async () => {
    const session = execa(NATIVE_ENTRY, ['enter', ...target(web), '--', 'sh', '-c', 'sleep 1041 & echo started; sleep 1042'], {
      reject: false,
      env: { NSDEBUG_RUN_DIR: runDir },
    });
    await new Promise<void>((resolve) => session.stdout!.on('data', (d: Buffer) => d.toString().includes('started') && resolve()));
    serve.kill('SIGKILL');
    const r = await session;
    expect(r.exitCode).toBe(ExitCode.INTERNAL);
    expect(r.stderr).toContain('the agent ended the session without an exit code');
    expect(await waitFor(() => processesMatching('sleep 1041', 'sleep 1042').length === 0, 5000)).toBe(true);
    serve = await startServe();
  });

  test('writes one audit line per session', async () => {
    let log = '';
    serve.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    await execa(NATIVE_ENTRY, ['enter', ...target(web), '--pod=default/web', '--container=app', '--', 'sh', '-c', 'exit 6'], {
      reject: false,
      env: { NSDEBUG_RUN_DIR: runDir },
    });
    expect(await waitFor(() => log.includes('"msg":"session"'), 5000)).toBe(true);
    const line = JSON.parse(log.split('\n').find((l) => l.includes('"msg":"session"'))!);
    expect(line).toMatchObject({
      level: 'info',
      pod: 'default/web',
      container: 'app',
      containerId: web.container().id,
      exitCode: 6,
      command: ['sh', '-c', 'exit 6'],
      hostPid: web.container().pid,
    });
    expect(line.namespaces).toEqual(expect.arrayContaining(['pid', 'mnt', 'net', 'uts', 'ipc']));
    expect(line.privileged).toBe(false);
  });

  test("a confined session lives in the container's cgroups, in every hierarchy; a --privileged one in the agent's", async () => {
    const cgroupsOf = async (extra: string[], marker: string) => {
      const session = execa(NATIVE_ENTRY, ['enter', ...target(web), ...extra, '--', 'sh', '-c', `exec sleep ${marker}`], {
        reject: false,
        env: { NSDEBUG_RUN_DIR: runDir },
      });
      expect(await waitFor(() => processesMatching(`sleep ${marker}`).length === 1, 5000)).toBe(true);
      // from outside: the host's view of where the session's process is
      const lines = readFileSync(`/proc/${processesMatching(`sleep ${marker}`)[0]}/cgroup`, 'utf8')
        .trim()
        .split('\n');
      session.kill('SIGTERM');
      await session;
      return lines;
    };
    const id = web.container().id;
    const confined = await cgroupsOf([], '1043');
    for (const line of confined) {
      if (line.startsWith('0::')) expect(line).toMatch(new RegExp(`/${id}/nsdebug-session-\\d+-[0-9a-f]+$`));
      else expect(line).toMatch(new RegExp(`/${id}$`));
    }
    const privileged = await cgroupsOf(['--privileged'], '1044');
    expect(privileged.filter((l) => l.includes(id))).toEqual([]);
    // and the session's cgroup is gone with it
    const unified = confined.find((l) => l.startsWith('0::'))!.slice(3);
    expect(await waitFor(() => !existsSync(`/sys/fs/cgroup/unified${unified}`) && !existsSync(`/sys/fs/cgroup${unified}`), 5000)).toBe(
      true,
    );
  });

  test('names a --privileged session as such', async () => {
    let log = '';
    serve.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    await execa(NATIVE_ENTRY, ['enter', ...target(web), '--pod=default/web', '--privileged', '--', 'sh', '-c', 'exit 4'], {
      reject: false,
      env: { NSDEBUG_RUN_DIR: runDir },
    });
    expect(await waitFor(() => log.includes('"exitCode":4'), 5000)).toBe(true);
    expect(JSON.parse(log.split('\n').find((l) => l.includes('"exitCode":4'))!)).toMatchObject({ msg: 'session', privileged: true });
  });
});

describe('--read-only', () => {
  let writer: Pod;
  beforeAll(async () => {
    // An application that keeps writing to its root and to /tmp.
    writer = await createPod(cri, {
      name: 'writer',
      image: IMAGES.busybox,
      command: ['sh', '-c', 'while true; do date +%s%N > /tmp/alive; date > /state; sleep 0.1; done'],
    });
  });
  afterAll(() => writer?.remove());

  test('observes without changing a byte: every write fails with EROFS, reads work, the app keeps writing', async () => {
    const script = [
      'for f in /x /tmp/x /etc/x /dev/shm/x; do touch $f 2>&1 | grep -q "Read-only file system" && echo "$f: read-only"; done',
      'rm /marker.txt 2>&1 | grep -o "Read-only file system"',
      'cat /marker.txt',
      // the app's writes still land (give a loaded machine up to 5 s to show one)
      'a=$(cat /tmp/alive); for i in $(seq 50); do sleep 0.1; b=$(cat /tmp/alive); [ -n "$b" ] && [ "$b" != "$a" ] && { echo app-still-writing; break; }; done',
    ].join('; ');
    const r = await execa(NATIVE_ENTRY, ['enter', ...target(writer), '--read-only', '--', 'sh', '-c', script], {
      reject: false,
      env: { NSDEBUG_RUN_DIR: runDir },
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      '/x: read-only',
      '/tmp/x: read-only',
      '/etc/x: read-only',
      '/dev/shm/x: read-only',
      'Read-only file system',
      MARKERS.busybox,
      'app-still-writing',
    ]);
    // The container's own view stayed writable: it made its files, and no x appeared anywhere.
    const check = await execa(
      NATIVE_ENTRY,
      ['enter', ...target(writer), '--', 'sh', '-c', 'touch /y && rm /y && echo writable; ls /x /tmp/x 2>&1 | grep -c "No such file"'],
      { reject: false, env: { NSDEBUG_RUN_DIR: runDir } },
    );
    expect(check.stdout.split('\n')).toEqual(['writable', '2']);
  });

  test('--read-only cannot drop the mount namespace', async () => {
    const r = await execa(NATIVE_ENTRY, ['enter', ...target(writer), '--read-only', '--ns=pid', '--', 'true'], {
      reject: false,
      env: { NSDEBUG_RUN_DIR: runDir },
    });
    expect(r.exitCode).toBe(ExitCode.USAGE);
    expect(r.stderr).toContain('--read-only needs the mount namespace');
  });
});

describe('--process: a process of the container, maybe in a nested PID namespace', () => {
  let nested: Pod;
  beforeAll(async () => {
    // The seed's exercise: a container that itself runs a grandchild PID namespace.
    nested = await createPod(cri, {
      name: 'nested',
      // Unprivileged, so with its own user namespace, as a sandboxing tool would do it (a new
      // /proc cannot be mounted over the container's masked one, so no --mount-proc).
      containers: [{ name: 'app', image: IMAGES.busybox, command: ['sh', '-c', 'unshare -r -p -f sleep 3601 & exec sleep 3600'] }],
    });
  });
  afterAll(() => nested?.remove());

  test('ps shows the nesting; entering the nested process sees only its namespace', async () => {
    const nestedSleep = async () => {
      const ps = await execa('node', [AGENT, 'ps', ...target(nested), '-o', 'json']);
      return (JSON.parse(ps.stdout) as ProcessInfo[]).find((p) => p.command === 'sleep 3601');
    };
    let inner = await nestedSleep();
    for (let i = 0; !inner && i < 50; i++) inner = await sleep(100).then(nestedSleep);
    expect(inner).toMatchObject({ nestLevel: 1 });
    expect(inner!.nsPids).toHaveLength(3);
    expect(inner!.nsPids[2]).toBe(1); // PID 1 of the grandchild namespace
    const containerPid = inner!.nsPids[1]!;
    const r = await execa(
      NATIVE_ENTRY,
      [
        'enter',
        ...target(nested),
        `--process=${containerPid}`,
        '--',
        'sh',
        '-c',
        'echo $$; readlink /proc/self/ns/pid; readlink /proc/self/ns/user',
      ],
      {
        reject: false,
        env: { NSDEBUG_RUN_DIR: runDir },
      },
    );
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const [shellPid, pidNs, userNs] = r.stdout.split('\n');
    // In the grandchild namespace, where sleep 3601 is PID 1: the shell comes right after.
    expect(Number(shellPid)).toBeLessThan(10);
    expect(pidNs).toBe(readlinkSync(`/proc/${inner!.hostPid}/ns/pid`));
    expect(pidNs).not.toBe(readlinkSync(`/proc/${nested.container().pid}/ns/pid`));
    expect(userNs).toBe(readlinkSync(`/proc/${inner!.hostPid}/ns/user`));
  });

  test('an unknown PID is refused', async () => {
    const r = await execa('node', [AGENT, 'enter', ...target(nested), '--process=4000000', '--', 'true'], { reject: false });
    expect(r.exitCode).toBe(ExitCode.NOT_FOUND);
    expect(r.stderr).toContain('no process 4000000 in container');
  });
});
