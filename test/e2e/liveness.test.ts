// Nothing is left behind, whatever ends a session (issue 13). Each ending is tried on four sessions
// at once: plain mode (exec) and --session-auth (port-forward), each with pipes and with a TTY.
// Every session runs a backgrounded and a double-forked (setsid) process next to its command, and
// the check is made from outside nsdebug: pgrep on the target's node for those processes, the
// agent's audit line for how the session ended, the CLI's exit code and last line, and, for TTY
// sessions, `stty -a` on the CLI's own terminal after it exited. On a VM node (emulated CPUs) the
// time bounds are scaled by slow().
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  busyboxPod,
  clusterEnv,
  E2E_LABEL,
  INSTALL_SETUP_MS,
  ROLLOUT_MS,
  installAgent,
  kubectl,
  kubectlJson,
  type PodJson,
  waitFor,
} from './helpers/kube.js';
import { agentPodOn, clusterSh, HOST_NODE, onNode, pgrepOn, slow, targetNode } from './helpers/node.js';

const env = clusterEnv();
const NODE = targetNode();
// one per node type: the previous tier's may still be terminating
const NS = `nsdebug-e2e-liveness-${NODE.name}`;
const CUT_NETNS = 'nsdbg-e2e-cut';
const dir = mkdtempSync(join(tmpdir(), 'nsdebug-liveness-'));

type Mode = 'plain' | 'session-auth';
interface Session {
  mode: Mode;
  tty: boolean;
  marker: number;
  child: ResultPromise;
  /** the CLI's PID (the node process kubectl exec'd into) */
  cliPid: number;
  /** TTY: where the CLI's exit code and its terminal's settings land once it exited */
  ttyFiles?: { code: string; stty: string };
}

const CASES: Array<[Mode, boolean]> = [
  ['plain', false],
  ['plain', true],
  ['session-auth', false],
  ['session-auth', true],
];
let nextMarker = 6100;

const existsPid = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Processes of this host (where the CLI runs) matching pattern. */
const pgrep = (pattern: string) => pgrepOn(HOST_NODE, pattern);
/** The session's three processes in the target, as the target's node sees them. */
const targetProcesses = (s: Session) => pgrepOn(NODE.name, `^sleep (${s.marker}|${s.marker + 1}|${s.marker + 2})$`);

/** The command each session runs: one process in the background, one double-forked, one exec'd. */
const script = (marker: number) => `sleep ${marker} & (setsid sleep ${marker + 1} &); exec sleep ${marker + 2}`;

function cliArgs(mode: Mode, tty: boolean, marker: number): string[] {
  return [
    'nsdebug',
    '-n',
    NS,
    ...(mode === 'session-auth' ? ['--session-auth'] : []),
    ...(tty ? ['-it'] : []),
    'pod/target',
    '--',
    'sh',
    '-c',
    script(marker),
  ];
}

const shellQuote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/** Start one session (in netns when given) and wait until its processes run in the target. */
async function startSession(mode: Mode, tty: boolean, netns?: { name: string; kubeconfig: string }): Promise<Session> {
  const marker = (nextMarker += 10);
  const wrap = netns ? ['ip', 'netns', 'exec', netns.name, 'env', `KUBECONFIG=${netns.kubeconfig}`] : [];
  let child: ResultPromise;
  let ttyFiles: Session['ttyFiles'];
  if (tty) {
    // script(1) gives the CLI a terminal of its own; afterwards the same terminal's settings are recorded
    ttyFiles = { code: join(dir, `${marker}.code`), stty: join(dir, `${marker}.stty`) };
    const line = [...wrap, 'kubectl', ...cliArgs(mode, true, marker)].map(shellQuote).join(' ');
    child = execa('script', ['-qfec', `${line}; echo $? > ${ttyFiles.code}; stty -a > ${ttyFiles.stty}`, '/dev/null'], {
      reject: false,
      stdin: 'pipe',
    });
  } else {
    child = execa(wrap[0] ?? 'kubectl', [...wrap.slice(1), ...(wrap.length ? ['kubectl'] : []), ...cliArgs(mode, false, marker)], {
      reject: false,
    });
  }
  const session: Session = { mode, tty, marker, child, cliPid: 0, ...(ttyFiles ? { ttyFiles } : {}) };
  let exited: string | undefined;
  void child.then((r) => (exited = `exit ${r.exitCode}: ${String(r.stderr || r.stdout).slice(-400)}`));
  await waitFor(
    `session ${marker}'s processes in the target`,
    async () => {
      if (exited) throw new Error(`the CLI ended before its session ran (${exited})`);
      return (await targetProcesses(session)).length === 3;
    },
    slow(60_000),
    200,
  );
  // kubectl exec'd the plugin: its node process is the CLI
  const [pid] = await pgrep(`kubectl-nsdebug .*sleep ${marker}`);
  if (!pid) throw new Error(`no CLI process for session ${marker}`);
  session.cliPid = pid;
  return session;
}

const describeSession = (s: Session) => `${s.mode}${s.tty ? ' -it' : ''} (sleep ${s.marker})`;

/** Wait until none of the session's processes is left; how long that took, ms. */
async function gone(s: Session, withinMs: number, since: number): Promise<number> {
  await waitFor(
    `${describeSession(s)}: its processes gone from the node`,
    async () => (await targetProcesses(s)).length === 0,
    withinMs,
    100,
  );
  return Date.now() - since;
}

/** What the user saw: exit code, last line of stderr (or of the terminal), terminal settings after. */
async function outcome(s: Session): Promise<{ code: number | undefined; signal?: string; lastLine: string; sttyAfter?: string }> {
  const r = await s.child;
  const lines = String(r.stderr || r.stdout)
    // the terminal's escape sequences (progress line erasure) and carriage returns as line breaks
    // eslint-disable-next-line no-control-regex
    .replace(/\x1b\[[0-9;]*[A-Za-z]|\r/g, '\n')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (s.ttyFiles) {
    return {
      code: Number(readFileSync(s.ttyFiles.code, 'utf8').trim()),
      lastLine: lines.at(-1) ?? '',
      sttyAfter: readFileSync(s.ttyFiles.stty, 'utf8'),
    };
  }
  return { code: r.exitCode, ...(r.signal ? { signal: r.signal } : {}), lastLine: lines.at(-1) ?? '' };
}

/** The whole log of the agent on the target's node (extra: --previous, …): its sessions are audited there. */
const agentLogs = async (...extra: string[]) =>
  kubectl(['-n', 'nsdebug-system', 'logs', await agentPodOn(NODE.name), '--tail', '-1', ...extra]);

/** The agent's audit line for a session (by its command's marker), from the agent's log (or `log`, followed earlier). */
async function auditLine(s: Session, log?: () => string): Promise<Record<string, unknown>> {
  return waitFor(
    `the audit line of ${describeSession(s)}`,
    async () => {
      const r = await agentLogs('--prefix=false');
      const prev = await agentLogs('--previous');
      const lines = `${log?.() ?? ''}\n${String(prev.stdout)}\n${String(r.stdout)}`.split('\n');
      const line = lines.find((l) => l.includes(`"msg":"session"`) && l.includes(`sleep ${s.marker + 2}`) && l.includes('"ended"'));
      return line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
    },
    30_000,
  );
}

/** A terminal left as the user had it: canonical mode and echo on (raw mode would show -icanon -echo). */
const restored = (stty: string | undefined) => /(^|\s)icanon(\s|$)/.test(stty ?? '') && /(^|\s)echo(\s|$)/.test(stty ?? '');

async function startAll(netns?: { name: string; kubeconfig: string }): Promise<Session[]> {
  const sessions: Session[] = [];
  for (const [mode, tty] of CASES) sessions.push(await startSession(mode, tty, netns));
  return sessions;
}

const agentReady = () =>
  waitFor(
    'the agent ready',
    async () => {
      const r = await kubectl(['-n', 'nsdebug-system', 'rollout', 'status', 'ds/nsdebug-agent', '--timeout', '5s']);
      if (r.exitCode !== 0) return false;
      const pod = await kubectlJson<PodJson>(['-n', 'nsdebug-system', 'get', 'pod', await agentPodOn(NODE.name)]);
      return pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    },
    ROLLOUT_MS,
    1000,
  );

beforeAll(async () => {
  await installAgent('--session-auth');
  const objects = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: { [E2E_LABEL]: 'true' }, annotations: NODE.nodeSelector } },
    busyboxPod('target', NS, 'sleep infinity', { restart: 'Always' }),
  ];
  const applied = await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  if (applied.exitCode !== 0) throw new Error(`kubectl apply: ${String(applied.stderr)}`);
  await waitFor(
    'pod target running',
    async () => (await kubectlJson<PodJson>(['-n', NS, 'get', 'pod', 'target'])).status.phase === 'Running',
  );
  await agentReady();
}, INSTALL_SETUP_MS);

afterAll(async () => {
  await execa('ip', ['netns', 'del', CUT_NETNS], { reject: false });
  await execa('ip', ['link', 'del', 'nsdbg-cut0'], { reject: false });
  await kubectl(['delete', 'namespace', NS, '--wait=false']);
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  // a failed test must not leave sessions for the next one
  await execa('pkill', ['-9', '-f', 'kubectl-nsdebug .*sleep 6'], { reject: false });
});

describe.each([
  ['SIGKILL', 'KILL', undefined],
  ['SIGHUP (terminal closed)', 'HUP', 129],
  ['SIGTERM', 'TERM', 143],
] as const)('the CLI killed with %s', (_what, signal, ttyCode) => {
  test.each(CASES)('%s, tty %s: every process of the session ends within 5 s', async (mode, tty) => {
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
  });
});

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

const apiServerReady = () =>
  waitFor('the API server ready', async () => (await kubectl(['get', '--raw', '/readyz'])).exitCode === 0, 120_000, 1000);

/** The PID of a component on its node: the control plane on this host, the kubelet on the target's node. */
async function componentPid(component: 'kube-apiserver' | 'kubelet'): Promise<{ node: string; pid: number }> {
  const node = component === 'kubelet' ? NODE.name : HOST_NODE;
  if (node === HOST_NODE) {
    const pidFile = join(process.env.NSDEBUG_CLUSTER_DIR ?? '/var/lib/nsdebug-cluster', 'pids', `${component}.pid`);
    return { node, pid: Number(readFileSync(pidFile, 'utf8').trim()) };
  }
  // a systemd unit on a VM node
  return { node, pid: Number(String((await onNode(node, ['systemctl', 'show', '-P', 'MainPID', component])).stdout).trim()) };
}

test.each([['kube-apiserver'], ['kubelet']] as const)(
  '%s restarted mid-session: everything ends within 5 s of its going, the CLI says the connection closed (75)',
  async (component) => {
    await apiServerReady();
    await agentReady();
    const sessions = await startAll();
    const old = await componentPid(component);
    expect(old.pid).toBeGreaterThan(1);
    const restart = clusterSh(['restart', component, ...(component === 'kubelet' ? [NODE.name] : [])]);
    try {
      // the cause is the process going away (a SIGTERMed API server first drains for a while)
      await waitFor(
        `the old ${component} gone`,
        async () =>
          old.node === HOST_NODE ? !existsPid(old.pid) : (await onNode(old.node, ['kill', '-0', String(old.pid)])).exitCode !== 0,
        slow(60_000),
        100,
      );
      const goneAt = Date.now();
      for (const s of sessions) expect(await gone(s, slow(15_000), goneAt)).toBeLessThanOrEqual(slow(5000));
      for (const s of sessions) {
        const seen = await outcome(s);
        expect(seen.code).toBe(75);
        expect(seen.lastLine).toMatch(/^error: the connection to the nsdebug agent on node .* closed before the command finished/);
        if (s.tty) expect(restored(seen.sttyAfter)).toBe(true);
      }
    } finally {
      await restart;
      await apiServerReady();
      await agentReady();
    }
    // with --session-auth the CLI deletes its DebugSession on the way out, which may reach the agent first
    for (const s of sessions)
      expect(s.mode === 'plain' ? ['client gone'] : ['client gone', 'revoked']).toContain((await auditLine(s)).ended);
  },
  slow(300_000),
);

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
