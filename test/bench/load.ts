// The bench's load section (see run.ts): many sessions at once on one agent.
// - Round 1: 50 sessions started at once, 35 pipes (10 MB of random bytes through `cat`, each
//   its own bytes, checked by length and sha256, exit 0) and 15 TTYs (10,000,000 'x' from the
//   container through a pty under `script`, exit 7).
// - Round 2: the same 50 with two slow readers alongside (stdout not read for 8 s; the CLI
//   SIGSTOPped for 8 s): the 50 should take as long as in round 1.
// - The agent's resident `nsdebug-agent serve` on this host (the node): RSS and open fds when
//   idle, at their peak (sampled every 200 ms) and once the load is over.
// A failed session is reported (which, and why) and counted, never thrown.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import type { Row } from './run.js';

const CLI = fileURLToPath(new URL('../../../bin/kubectl-nsdebug', import.meta.url));
const PIPES = 35;
const TTYS = 15;
const SESSION_BYTES = 10_000_000;
const SOLO_RUNS = 5;
/** how long a slow reader stops reading, once 1 MiB has arrived (the issue: "less than 15 s") */
const STALL_MS = 8000;
/** for a whole round, every session included: 50 Node CLIs starting at once on 2 cores is slow */
const ROUND_TIMEOUT_MS = 10 * 60_000;
const TTY_EXIT = 7;
const X = 0x78;

type SlowReader = 'paused pipe' | 'SIGSTOP';

interface Session {
  name: string;
  tty: boolean;
  /** pipes: what goes in, and so must come out */
  input?: Buffer;
  sha256?: string;
  slow?: SlowReader;
}

interface Outcome {
  name: string;
  ms: number;
  /** what went wrong; undefined: right bytes, right exit code */
  problem?: string;
}

function pipeSession(name: string, slow?: SlowReader): Session {
  const input = randomBytes(SESSION_BYTES);
  return { name, tty: false, input, sha256: createHash('sha256').update(input).digest('hex'), slow };
}

/** as the table's quantiles (run.ts) */
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
/** One word for sh -c. */
export const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** One session from spawn to exit, checked. Resolves with what went wrong rather than rejecting. */
function runSession(session: Session, env: NodeJS.ProcessEnv, dir: string, deadline: number): Promise<Outcome> {
  const t0 = performance.now();
  const target = ['-n', 'demo', '-i', 'pod/busybox'];
  const stderrFile = `${dir}/${session.name}.stderr`;
  let child: ChildProcess;
  if (session.tty) {
    // `script` gives the CLI a pty for stdin and stdout; its stderr goes to a file, so that only
    // the session's output comes through the pty. script's stdin stays open and unwritten:
    // at EOF it would send the pty an EOF character, which the container's pty would echo.
    const remote = `head -c ${SESSION_BYTES} /dev/zero | tr "\\\\0" x; exit ${TTY_EXIT}`;
    const cli = [CLI, '-t', ...target, '--', 'sh', '-c', remote].map(quote).join(' ');
    child = spawn('script', ['-qfec', `${cli} 2>${quote(stderrFile)}`, '/dev/null'], { env: { ...env, SHELL: '/bin/sh' } });
  } else {
    child = spawn(CLI, [...target, '--', 'cat'], { env });
    child.stdin!.on('error', () => {}); // EPIPE when the CLI fails early: its exit code tells
    child.stdin!.end(session.input);
  }
  const stdout = child.stdout!;
  const hash = createHash('sha256');
  let bytes = 0;
  let xs = 0;
  let stalled = false;
  stdout.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (session.tty) for (const b of chunk) xs += b === X ? 1 : 0;
    else hash.update(chunk);
    if (session.slow && !stalled && bytes >= 1 << 20) {
      stalled = true;
      if (session.slow === 'paused pipe') {
        stdout.pause();
        setTimeout(() => stdout.resume(), STALL_MS);
      } else {
        child.kill('SIGSTOP');
        setTimeout(() => child.kill('SIGCONT'), STALL_MS);
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  let timedOut = false;
  const timer = setTimeout(
    () => {
      timedOut = true;
      child.kill('SIGKILL');
    },
    Math.max(0, deadline - performance.now()),
  );
  return new Promise((resolve) => {
    const done = (problem?: string) => {
      clearTimeout(timer);
      child.stdin?.destroy();
      if (problem && session.tty) {
        try {
          stderr = readFileSync(stderrFile, 'utf8').slice(-2000);
        } catch {
          // no stderr file: the CLI never started
        }
      }
      const detail = problem && stderr.trim() ? `${problem}; stderr: ${stderr.trim().replaceAll('\n', ' ⏎ ')}` : problem;
      resolve({ name: session.name, ms: performance.now() - t0, problem: detail });
    };
    child.on('error', (err) => done(`spawn failed: ${err.message}`));
    child.on('close', (code, signal) => {
      const wantCode = session.tty ? TTY_EXIT : 0;
      const problems: string[] = [];
      if (timedOut) problems.push(`timed out (round limit ${ROUND_TIMEOUT_MS / 1000} s), killed`);
      else if (code !== wantCode) problems.push(signal ? `killed by ${signal}` : `exit ${code} (want ${wantCode})`);
      if (session.tty) {
        if (xs !== SESSION_BYTES) problems.push(`${xs} 'x' (want ${SESSION_BYTES})`);
        if (bytes !== xs) problems.push(`${bytes - xs} other bytes`);
      } else {
        if (bytes !== SESSION_BYTES) problems.push(`${bytes} bytes out (want ${SESSION_BYTES})`);
        else if (hash.digest('hex') !== session.sha256) problems.push('bytes differ (sha256)');
      }
      if (session.slow && !stalled) problems.push('never stalled (less than 1 MiB arrived)');
      done(problems.length ? problems.join(', ') : undefined);
    });
  });
}

async function runRound(sessions: Session[], env: NodeJS.ProcessEnv, dir: string): Promise<Outcome[]> {
  const deadline = performance.now() + ROUND_TIMEOUT_MS;
  const outcomes = await Promise.all(sessions.map((s) => runSession(s, env, dir, deadline)));
  for (const o of outcomes.filter((o) => o.problem)) process.stderr.write(`bench: load: session ${o.name} FAILED: ${o.problem}\n`);
  return outcomes;
}

async function runSolo(session: Session, env: NodeJS.ProcessEnv, dir: string): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < SOLO_RUNS; i++) {
    const [outcome] = await runRound([session], env, dir);
    if (outcome!.problem) throw new Error(`a session alone failed (${outcome!.name}): ${outcome!.problem}`);
    samples.push(outcome!.ms);
  }
  return samples;
}

interface Usage {
  rssMiB: number;
  fds: number;
  /** the agent pod's memory cgroup: what its memory limit counts, sessions' processes included */
  podMemoryMiB: number;
}

/**
 * The node's resident agent: its cmdline is `node …/nsdebug-agent.js serve …`, as is that of the
 * session supervisors it forks (until they exec), hence the one whose parent is not a serve.
 */
function agentServePid(): number {
  const pgrep = spawnSync('pgrep', ['-f', 'nsdebug-agent(\\.js)? serve'], { encoding: 'utf8' });
  const serves = pgrep.stdout.trim().split('\n').filter(Boolean).map(Number);
  const parentOf = (pid: number) => {
    try {
      return Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    } catch {
      return NaN;
    }
  };
  const roots = serves.filter((pid) => !serves.includes(parentOf(pid)));
  if (roots.length !== 1) throw new Error(`want one nsdebug-agent serve on this host, found PIDs ${roots.join(', ') || 'none'}`);
  return roots[0]!;
}

/** The usage and limit files of the memory cgroup of a process's pod (its container's parent), v1 or v2. */
function podMemoryFiles(pid: number): { usage: string; limit: string } {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes('memory'));
  if (v1) {
    const dir = `/sys/fs/cgroup/memory${dirname(v1.split(':')[2]!)}`;
    return { usage: `${dir}/memory.usage_in_bytes`, limit: `${dir}/memory.limit_in_bytes` };
  }
  const dir = `/sys/fs/cgroup${dirname(lines.find((l) => l.startsWith('0::'))!.slice(3))}`;
  return { usage: `${dir}/memory.current`, limit: `${dir}/memory.max` };
}

/** The agent's usage now; undefined once its serve has gone. */
function usageOf(pid: number, podMemory: string): Usage | undefined {
  try {
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { rssMiB: Number(kib) / 1024, fds, podMemoryMiB: Number(readFileSync(podMemory, 'utf8')) / 2 ** 20 };
  } catch {
    return undefined;
  }
}

/** The agent pod (one node: one pod), its container's restarts so far, and why the last one ended. */
function agentRestarts(env: NodeJS.ProcessEnv): { podUid: string; restarts: number; lastReason: string } {
  const status = '.items[0].status.containerStatuses[0]';
  const jsonpath = `{.items[0].metadata.uid} {${status}.restartCount} {${status}.lastState.terminated.reason}`;
  const get = ['-n', 'nsdebug-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=nsdebug-agent', '-o', `jsonpath=${jsonpath}`];
  const [podUid, restarts, lastReason] = execFileSync('kubectl', get, { encoding: 'utf8', env }).trim().split(' ');
  return { podUid: podUid ?? '', restarts: Number(restarts), lastReason: lastReason ?? '' };
}

/** Until the agent pod is Ready again (after a restart), with its new serve. */
async function waitForAgent(env: NodeJS.ProcessEnv): Promise<number> {
  const selector = 'app.kubernetes.io/name=nsdebug-agent';
  execFileSync('kubectl', ['-n', 'nsdebug-system', 'wait', '--for=condition=Ready', 'pod', '-l', selector, '--timeout=2m'], {
    env,
    stdio: 'ignore',
  });
  for (let attempt = 1; ; attempt++) {
    try {
      return agentServePid();
    } catch (err) {
      if (attempt === 30) throw err; // 15 s: an old serve still exiting, a new one starting
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** The agent, watched for one load: its idle level, its peak (sampled every 200 ms), its level after. */
class AgentWatch {
  readonly podMemory: string;
  /** the pod's memory limit; Infinity: none */
  readonly podMemoryLimitMiB: number;
  readonly peak: Usage = { rssMiB: 0, fds: 0, podMemoryMiB: 0 };
  private readonly timer: NodeJS.Timeout;

  constructor(readonly pid: number) {
    const files = podMemoryFiles(pid);
    this.podMemory = files.usage;
    // v1 writes "no limit" as a huge number, v2 as "max"
    this.podMemoryLimitMiB = Number(readFileSync(files.limit, 'utf8').replace('max', 'Infinity')) / 2 ** 20;
    this.timer = setInterval(() => this.sample(), 200);
  }

  now(): Usage | undefined {
    return usageOf(this.pid, this.podMemory);
  }

  sample(): void {
    const now = this.now();
    if (!now) return;
    this.peak.rssMiB = Math.max(this.peak.rssMiB, now.rssMiB);
    this.peak.fds = Math.max(this.peak.fds, now.fds);
    this.peak.podMemoryMiB = Math.max(this.peak.podMemoryMiB, now.podMemoryMiB);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Waits for the agent to be done with the last sessions: until its fds are back to `idleFds`
   * (or, for the idle level itself, steady for 2 s), at least 3 s, at most 30 s.
   */
  async settle(idleFds?: number): Promise<Usage | undefined> {
    const t0 = performance.now();
    let last = this.now();
    let steadySince = t0;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const now = this.now();
      if (!now || !last) return undefined;
      if (now.fds !== last.fds) steadySince = performance.now();
      last = now;
      const elapsed = performance.now() - t0;
      const settled = idleFds === undefined ? performance.now() - steadySince >= 2000 : now.fds <= idleFds;
      if ((settled && elapsed >= 3000) || elapsed >= 30_000) {
        const mib = (x: number) => `${x.toFixed(1)} MiB`;
        const level = `${now.fds} fds, RSS ${mib(now.rssMiB)}, pod memory cgroup ${mib(now.podMemoryMiB)}`;
        process.stderr.write(`bench: load: agent at ${level} after ${(elapsed / 1000).toFixed(1)} s\n`);
        return now;
      }
    }
  }
}

export async function loadRows(env: NodeJS.ProcessEnv): Promise<Row[]> {
  const dir = mkdtempSync(`${tmpdir()}/nsdebug-bench-load-`);
  try {
    process.stderr.write(`bench: load: one pipe and one TTY session alone, ${SOLO_RUNS} runs each\n`);
    const soloPipe = await runSolo(pipeSession('solo-pipe'), env, dir);
    const soloTty = await runSolo({ name: 'solo-tty', tty: true }, env, dir);
    const solo = { what: `one session alone (${SOLO_RUNS} pipe + ${SOLO_RUNS} TTY)`, samples: [...soloPipe, ...soloTty] };

    // idle: after the sessions alone, so that what a first session loads for good counts as idle
    const before = agentRestarts(env);
    let agent = new AgentWatch(agentServePid());
    const firstAgent = agent;
    const idle = await agent.settle();
    if (!idle) throw new Error(`the agent's serve (PID ${agent.pid}) went away`);
    /** The agent's serve is still the one measured idle, else waits for its successor. */
    const agentSurvived = async (round: string): Promise<boolean> => {
      if (agent.now()) return true;
      const { lastReason } = agentRestarts(env);
      process.stderr.write(
        `bench: load: the agent's serve (PID ${agent.pid}) went away during ${round} (${lastReason || 'reason unknown'})\n`,
      );
      agent.stop();
      agent = new AgentWatch(await waitForAgent(env));
      return false;
    };

    const sessions = [
      ...Array.from({ length: PIPES }, (_, i) => pipeSession(`pipe-${i + 1}`)),
      ...Array.from({ length: TTYS }, (_, i): Session => ({ name: `tty-${i + 1}`, tty: true })),
    ];
    const n = sessions.length;
    process.stderr.write(`bench: load: round 1, ${n} sessions at once (${PIPES} pipe, ${TTYS} TTY)\n`);
    const round1 = await runRound(sessions, env, dir);
    if (await agentSurvived('round 1')) await agent.settle(idle.fds); // round 2 starts from idle too

    const slowReaders = [pipeSession('slow-paused-pipe', 'paused pipe'), pipeSession('slow-sigstop', 'SIGSTOP')];
    process.stderr.write(`bench: load: round 2, the same ${n} with ${slowReaders.length} slow readers alongside\n`);
    const round2 = await runRound([...sessions, ...slowReaders], env, dir);
    const [paused, stopped] = round2.slice(n);
    const others = round2.slice(0, n);
    const after = (await agentSurvived('round 2')) && agent === firstAgent ? await agent.settle(idle.fds) : undefined;
    agent.stop();
    firstAgent.stop();
    const end = agentRestarts(env);
    // a pod replaced (deleted by someone, or by its DaemonSet) counts once, plus its successor's
    const replaced = end.podUid !== before.podUid;
    const restarts = replaced ? 1 + end.restarts : end.restarts - before.restarts;

    const ms = (outcomes: Outcome[]) => outcomes.map((o) => o.ms);
    const correct = (outcomes: Outcome[]) => [outcomes.filter((o) => !o.problem).length];
    const slowRow = (o: Outcome, how: string): Row => ({
      what: `slow reader alongside round 2: ${how} once 1 MiB is in (pipe, 10 MB)${o.problem ? ` — FAILED: ${o.problem.split('; stderr:')[0]} (stderr above)` : ', correct'}`,
      samples: [o.ms],
      baseline: { what: 'a pipe session alone', samples: soloPipe },
      goal: 'completes, correct bytes and exit code',
    });
    const load = `${n} concurrent sessions (${PIPES} pipe + ${TTYS} TTY, 10 MB each through cat)`;
    const idleOf = (pick: (u: Usage) => number) => ({ what: 'idle, before', samples: [pick(idle)] });
    const killed = after ? '' : ' (until it was killed)';
    const rows: Row[] = [
      { what: `${load}: correct bytes and exit code`, unit: 'count', samples: correct(round1), goal: `all ${n}` },
      { what: `${load}, session wall time`, samples: ms(round1), baseline: solo, goal: 'p50, p99 reported' },
      { what: `${load}, session wall time, p99 (of ${n}: the slowest)`, samples: [quantile(ms(round1), 0.99)], baseline: solo },
      {
        what: `${load} again, ${slowReaders.length} slow readers alongside: the ${n}'s session wall time`,
        samples: ms(others),
        baseline: { what: 'round 1, without them', samples: ms(round1) },
        goal: '≤ 1.2× (a slow reader slows only its own session)',
      },
      { what: `… round 2: correct bytes and exit code, the ${n}`, unit: 'count', samples: correct(others), goal: `all ${n}` },
      slowRow(paused!, `stdout not read for ${STALL_MS / 1000} s`),
      slowRow(stopped!, `the CLI SIGSTOPped for ${STALL_MS / 1000} s`),
      {
        what: `agent pod restarts during both rounds${replaced ? ', at least (the pod was replaced)' : restarts ? ` (last: ${end.lastReason})` : ''}`,
        unit: 'count',
        samples: [restarts],
        goal: '0',
      },
      {
        what: `agent's resident serve, open fds at peak${killed}`,
        unit: 'count',
        samples: [firstAgent.peak.fds],
        baseline: idleOf((u) => u.fds),
      },
      {
        what: `agent's resident serve, RSS at peak${killed}`,
        unit: 'MiB',
        samples: [firstAgent.peak.rssMiB],
        baseline: idleOf((u) => u.rssMiB),
      },
      {
        what: `agent pod's memory cgroup (what its limit counts), at peak${killed}`,
        unit: 'MiB',
        samples: [firstAgent.peak.podMemoryMiB],
        baseline: idleOf((u) => u.podMemoryMiB),
        goal: firstAgent.podMemoryLimitMiB < 2 ** 30 ? `< ${firstAgent.podMemoryLimitMiB.toFixed(0)} MiB (its limit)` : '',
      },
    ];
    if (!after) {
      process.stderr.write(`bench: load: the agent's serve was restarted: its fds and RSS after the load not reported\n`);
      return rows;
    }
    rows.push(
      {
        what: `agent's resident serve, open fds after the load`,
        unit: 'count',
        samples: [after.fds],
        baseline: idleOf((u) => u.fds),
        goal: '= idle',
      },
      {
        what: `agent's resident serve, RSS after the load`,
        unit: 'MiB',
        samples: [after.rssMiB],
        baseline: idleOf((u) => u.rssMiB),
        goal: '≤ idle + 20 MiB',
      },
    );
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
