// What the liveness suites share (issue 13): the four sessions each ending is tried on (plain mode
// and --session-auth, each with pipes and with a TTY), each running a backgrounded and a
// double-forked process next to its command, and the checks made from outside nsdebug: pgrep on
// the target's node, the agent's audit line, the CLI's exit code and last line, `stty -a` after.
// liveness.test.ts ends sessions by what happens on their node (the tier e2e-vm runs it on a VM);
// liveness-cluster.test.ts by what happens elsewhere (the API server, the network, a
// DebugSession, the agent's own limit), the same on any node.
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

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
} from './kube.js';
import { agentPodOn, clusterSh, HOST_NODE, onNode, pgrepOn, slow, targetNode } from './node.js';

export const env = clusterEnv();
export const NODE = targetNode();
// one per suite and node type: the previous one's may still be terminating (jest loads this
// module once per test file, with that file's path in expect's state)
export const NS = `nsdebug-e2e-${basename(expect.getState().testPath ?? 'liveness', '.test.ts')}-${NODE.name}`;
export const CUT_NETNS = 'nsdbg-e2e-cut';
export const dir = mkdtempSync(join(tmpdir(), 'nsdebug-liveness-'));

export type Mode = 'plain' | 'session-auth';
export interface Session {
  mode: Mode;
  tty: boolean;
  marker: number;
  child: ResultPromise;
  /** the CLI's PID (the node process kubectl exec'd into) */
  cliPid: number;
  /** TTY: where the CLI's exit code and its terminal's settings land once it exited */
  ttyFiles?: { code: string; stty: string };
}

export const CASES: Array<[Mode, boolean]> = [
  ['plain', false],
  ['plain', true],
  ['session-auth', false],
  ['session-auth', true],
];
let nextMarker = 6100;

export const existsPid = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Processes of this host (where the CLI runs) matching pattern. */
export const pgrep = (pattern: string) => pgrepOn(HOST_NODE, pattern);
/** The session's three processes in the target, as the target's node sees them. */
export const targetProcesses = (s: Session) => pgrepOn(NODE.name, `^sleep (${s.marker}|${s.marker + 1}|${s.marker + 2})$`);

/** The command each session runs: one process in the background, one double-forked, one exec'd. */
export const script = (marker: number) => `sleep ${marker} & (setsid sleep ${marker + 1} &); exec sleep ${marker + 2}`;

export function cliArgs(mode: Mode, tty: boolean, marker: number): string[] {
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

export const shellQuote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/** Start one session (in netns when given) and wait until its processes run in the target. */
export async function startSession(mode: Mode, tty: boolean, netns?: { name: string; kubeconfig: string }): Promise<Session> {
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

export const describeSession = (s: Session) => `${s.mode}${s.tty ? ' -it' : ''} (sleep ${s.marker})`;

/** Wait until none of the session's processes is left; how long that took, ms. */
export async function gone(s: Session, withinMs: number, since: number): Promise<number> {
  await waitFor(
    `${describeSession(s)}: its processes gone from the node`,
    async () => (await targetProcesses(s)).length === 0,
    withinMs,
    100,
  );
  return Date.now() - since;
}

/** What the user saw: exit code, last line of stderr (or of the terminal), terminal settings after. */
export async function outcome(s: Session): Promise<{ code: number | undefined; signal?: string; lastLine: string; sttyAfter?: string }> {
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
export const agentLogs = async (...extra: string[]) =>
  kubectl(['-n', 'nsdebug-system', 'logs', await agentPodOn(NODE.name), '--tail', '-1', ...extra]);

/** The agent's audit line for a session (by its command's marker), from the agent's log (or `log`, followed earlier). */
export async function auditLine(s: Session, log?: () => string): Promise<Record<string, unknown>> {
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
export const restored = (stty: string | undefined) => /(^|\s)icanon(\s|$)/.test(stty ?? '') && /(^|\s)echo(\s|$)/.test(stty ?? '');

export async function startAll(netns?: { name: string; kubeconfig: string }): Promise<Session[]> {
  const sessions: Session[] = [];
  for (const [mode, tty] of CASES) sessions.push(await startSession(mode, tty, netns));
  return sessions;
}

export const agentReady = () =>
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

/** The suite's target pod in NS (on the target node), the agent installed with --session-auth, and the clean-up after it. */
export function useLivenessTarget(): void {
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
}

export const apiServerReady = () =>
  waitFor('the API server ready', async () => (await kubectl(['get', '--raw', '/readyz'])).exitCode === 0, 120_000, 1000);

/** The PID of a component on its node: the control plane on this host, the kubelet on the target's node. */
export async function componentPid(component: 'kube-apiserver' | 'kubelet'): Promise<{ node: string; pid: number }> {
  const node = component === 'kubelet' ? NODE.name : HOST_NODE;
  if (node === HOST_NODE) {
    const pidFile = join(process.env.NSDEBUG_CLUSTER_DIR ?? '/var/lib/nsdebug-cluster', 'pids', `${component}.pid`);
    return { node, pid: Number(readFileSync(pidFile, 'utf8').trim()) };
  }
  // a systemd unit on a VM node
  return { node, pid: Number(String((await onNode(node, ['systemctl', 'show', '-P', 'MainPID', component])).stdout).trim()) };
}

/** A control-plane or node component restarted under four sessions: the kubelet in liveness, the API server in liveness-cluster. */
export const RESTART_TITLE = '%s restarted mid-session: everything ends within 5 s of its going, the CLI says the connection closed (75)';
export async function restartedMidSession(component: 'kube-apiserver' | 'kubelet'): Promise<void> {
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
      async () => (old.node === HOST_NODE ? !existsPid(old.pid) : (await onNode(old.node, ['kill', '-0', String(old.pid)])).exitCode !== 0),
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
  for (const s of sessions) expect(s.mode === 'plain' ? ['client gone'] : ['client gone', 'revoked']).toContain((await auditLine(s)).ended);
}
