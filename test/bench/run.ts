// `npm run bench`: one run, one table (Markdown on stdout, progress on stderr). Needs root.
// `--only cluster,load,scale,agent` (any of them) runs only those sections; `--only load` or
// `--only scale` alone uses the running e2e cluster as it is (`npm run bench -- --only load`).
// - cluster, on the e2e cluster (test/cluster; brought up for the run and down again if it was
//   not running): `kubectl nsdebug` against `kubectl exec` on the same pod, CLI start-up, and
//   the resident agent's memory.
// - load, on the same cluster: 50 concurrent sessions on its one agent, with slow readers (load.ts).
// - scale, on the same cluster with 1,000 kwok nodes and 10,000 pods beside it (test/cluster/scale.sh):
//   status, a session, completion and `sessions -A`, timed and their API requests counted.
// - On a private containerd with a kubelet-style pod (test/support): `nsdebug-agent enter`
//   against `nsenter` on the same container, and PID resolution with 10 and with 5,000 extra
//   processes on the host.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { findByProcScan, resolveContainer } from '../../src/agent/resolve.js';
import { CriClient } from '../support/cri.js';
import { createPod, IMAGES } from '../support/pods.js';
import { loadRows, quote } from './load.js';
import { scaleRows } from './scale.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const AGENT = `${ROOT}/bin/nsdebug-agent.js`;
const NATIVE_ENTRY = `${ROOT}/native/nsdebug-agent`;
const DIR = process.env.NSDEBUG_BENCH_DIR ?? '/tmp/nsdebug-bench';
const RUNS = 30;

export interface Row {
  what: string;
  samples: number[];
  /** of samples and baseline; ms unless said */
  unit?: 'ms' | 'MiB' | 'count';
  baseline?: { what: string; samples: number[] };
  goal?: string;
}

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
};
const value = (x: number, unit = 'ms') => (unit === 'count' ? String(Math.round(x)) : `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ${unit}`);

export function formatRows(rows: Row[]): string {
  const lines = ['| measurement | median | p95 | compared with | its median | ratio | goal |', '|---|---:|---:|---|---:|---:|---|'];
  for (const r of rows) {
    const median = quantile(r.samples, 0.5);
    const base = r.baseline ? quantile(r.baseline.samples, 0.5) : NaN;
    lines.push(
      `| ${r.what} | ${value(median, r.unit)} | ${value(quantile(r.samples, 0.95), r.unit)} | ${r.baseline?.what ?? ''} | ${r.baseline ? value(base, r.unit) : ''} | ${r.baseline ? `${(median / base).toFixed(1)}×` : ''} | ${r.goal ?? ''} |`,
    );
  }
  return lines.join('\n');
}

/** Wall time of each run of argv; a run that exits other than `expected` ends the bench. */
export function timeCommand(argv: string[], runs: number, env: NodeJS.ProcessEnv = process.env, input?: Buffer, expected = 0): number[] {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'], env, input, maxBuffer: 1 << 20 });
    samples.push(performance.now() - t0);
    if (r.status !== expected) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  }
  return samples;
}

function timeCall(fn: () => unknown, runs: number): number[] {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
  }
  return samples;
}

/** n idle processes on the host, to see whether PID resolution depends on their number. */
function startIdleProcesses(n: number): ChildProcess[] {
  return Array.from({ length: n }, () => spawn('/bin/busybox', ['sleep', '600'], { stdio: 'ignore' }));
}

/** VmHWM (peak resident set) of a process, in MiB. */
function peakRssMiB(pid: number): number {
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (!kib) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(kib) / 1024;
}

/** Peak RSS in MiB of a command and the processes it waits for (GNU time's %M), per run. */
function peakRssOfCommand(argv: string[], runs: number, env: NodeJS.ProcessEnv): number[] {
  return Array.from({ length: runs }, () => {
    const r = spawnSync('/usr/bin/time', ['-f', '%M', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], env });
    const kib = /^(\d+)$/m.exec(r.stderr)?.[1];
    if (r.status !== 0 || !kib) throw new Error(`/usr/bin/time ${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
    return Number(kib) / 1024;
  });
}

/**
 * Until an interactive shell's prompt shows at a terminal (script(1) gives the command a pty),
 * per run; then `exit`.
 */
async function timePrompt(argv: string[], runs: number, env: NodeJS.ProcessEnv): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const child = spawn('script', ['-qfec', argv.map(quote).join(' '), '/dev/null'], {
      env: { ...env, SHELL: '/bin/sh' },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    const closed = new Promise((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`no prompt from ${argv.join(' ')}: ${JSON.stringify(seen.slice(-200))}`));
      }, 30_000);
      child.stdout!.on('data', (d: Buffer) => {
        seen += d.toString('latin1');
        // busybox sh asks the terminal where its cursor is (ESC [6n) right after the prompt
        if (!/[#$] $/.test(seen.replaceAll(`${String.fromCharCode(27)}[6n`, ''))) return;
        samples.push(performance.now() - t0);
        clearTimeout(timer);
        child.stdin!.write('exit\r');
        resolve();
      });
    });
    await closed;
  }
  return samples;
}

/** User + system CPU seconds (as ms) of a command and the processes it waits for, per run. */
function cpuOfCommand(argv: string[], runs: number, env: NodeJS.ProcessEnv): number[] {
  return Array.from({ length: runs }, () => {
    const r = spawnSync('/usr/bin/time', ['-f', '%U %S', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], env });
    const m = /^([\d.]+) ([\d.]+)$/m.exec(r.stderr);
    if (r.status !== 0 || !m) throw new Error(`/usr/bin/time ${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
    return (Number(m[1]) + Number(m[2])) * 1000;
  });
}

/** The resident `serve` processes of agent pods on this host. */
function agentServePids(): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return /nsdebug-agent(\.js)?\0serve\0/.test(readFileSync(`/proc/${p}/cmdline`, 'latin1'));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** VmRSS (resident set now) of a process, in MiB. */
function rssMiB(pid: number): number {
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (!kib) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kib) / 1024;
}

/** The agent image's size as podman stored it (what a node pulls, uncompressed), in MiB. */
function agentImageMiB(image: string): number {
  const conf = { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? `${ROOT}/test/cluster/config/containers.conf` };
  return (
    Number(execFileSync('podman', ['image', 'inspect', '--format', '{{.Size}}', image], { encoding: 'utf8', env: conf }).trim()) / 2 ** 20
  );
}

export const run = (argv: string[], env: NodeJS.ProcessEnv = process.env) =>
  execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env });

/**
 * `kubectl debug --target` with a local image, until its ephemeral container has run `true`.
 * Each run leaves an ephemeral container in the pod for good (what nsdebug avoids): a throwaway
 * pod takes them and is deleted afterwards.
 */
function debugTargetRow(env: NodeJS.ProcessEnv): Row {
  const restricted = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'bench-debug-target', namespace: 'demo' },
    spec: {
      terminationGracePeriodSeconds: 0,
      securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'app',
          image: 'nsdebug.test/busybox:1',
          imagePullPolicy: 'Never',
          command: ['sleep', 'infinity'],
          securityContext: restricted,
        },
      ],
    },
  };
  execFileSync('kubectl', ['apply', '-f', '-'], { input: JSON.stringify(pod), env, stdio: ['pipe', 'ignore', 'inherit'] });
  try {
    run(['kubectl', '-n', 'demo', 'wait', '--for=condition=Ready', 'pod/bench-debug-target', '--timeout=60s'], env);
    const debug = ['kubectl', 'debug', '-n', 'demo', 'bench-debug-target', '-q', '-i', '--image=nsdebug.test/busybox:1'];
    debug.push('--image-pull-policy=Never', '--target=app', '--profile=restricted', '--', 'true');
    return {
      what: 'kubectl debug --target=app --image=busybox (local) -- true, 10 runs',
      samples: timeCommand(debug, 10, env),
      baseline: {
        what: 'kubectl exec busybox -- true',
        samples: timeCommand(['kubectl', 'exec', '-n', 'demo', 'busybox', '--', 'true'], 10, env),
      },
    };
  } finally {
    run(['kubectl', '-n', 'demo', 'delete', 'pod', 'bench-debug-target', '--grace-period=0', '--wait=false'], env);
  }
}

const CLUSTER = `${ROOT}/test/cluster/cluster.sh`;

/** The e2e cluster's coordinates, from the KEY=value lines of `cluster.sh up` or `status`. */
function clusterCoordinates(clusterOutput: string): { env: NodeJS.ProcessEnv; containerdAddress: string } {
  const coordinates = Object.fromEntries(
    clusterOutput
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return {
    env: { ...process.env, KUBECONFIG: coordinates.KUBECONFIG, PATH: `${ROOT}/bin:${process.env.PATH}` },
    containerdAddress: coordinates.CONTAINERD_ADDRESS ?? '',
  };
}

/**
 * `kubectl nsdebug` against `kubectl exec` on the e2e cluster, through the API server both; then
 * the load section, when asked for, on the same cluster and agent.
 */
async function clusterRows(withLoad: boolean, withScale: boolean): Promise<Row[]> {
  const wasUp = spawnSync('bash', [CLUSTER, 'status'], { stdio: 'ignore' }).status === 0;
  process.stderr.write(`bench: ${wasUp ? 'using the running' : 'bringing up the'} e2e cluster\n`);
  // measured on this host's node: a cluster brought up for the bench has no VM nodes (their
  // emulated CPUs would compete with what is measured); a running one is used as it is
  const { env, containerdAddress } = clusterCoordinates(run(['bash', CLUSTER, 'up', ...(wasUp ? [] : ['--nodes', '1'])]));
  try {
    const image = run(['bash', `${ROOT}/test/cluster/images.sh`, 'build-agent', containerdAddress])
      .trim()
      .split('\n')
      .pop()!;
    run(['kubectl', 'nsdebug', 'install', '--session-auth', '--image', image, '--timeout', '3m'], env);
    run(['bash', CLUSTER, 'wait-demo'], env);
    run(['kubectl', '-n', 'nsdebug-system', 'rollout', 'status', 'daemonset/nsdebug-agent', '--timeout=2m'], env);
    const agentPodRows: Row[] = [
      { what: `agent image ${image} (the agent's bundle, node, koffi, busybox)`, unit: 'MiB', samples: [agentImageMiB(image)] },
      { what: "agent pod's resident serve, RSS idle (before any session)", unit: 'MiB', samples: agentServePids().map(rssMiB) },
    ];
    process.stderr.write('bench: kubectl nsdebug vs kubectl exec\n');
    // kubectl takes no flags before a plugin's name: `kubectl nsdebug -n demo …`
    const kubectl = (command: string, ...args: string[]) => ['kubectl', command, '-n', 'demo', ...args];
    timeCommand(kubectl('nsdebug', 'pod/busybox', '--', 'true'), 3, env); // warm up
    const exec = { what: 'kubectl exec busybox -- true', samples: timeCommand(kubectl('exec', 'busybox', '--', 'true'), RUNS, env) };
    const execHelp = { what: 'kubectl exec --help', samples: timeCommand(kubectl('exec', '--help'), RUNS, env) };
    const rows: Row[] = [
      {
        what: 'kubectl nsdebug pod/busybox -- true (all namespaces, through the agent)',
        samples: timeCommand(kubectl('nsdebug', 'pod/busybox', '--', 'true'), RUNS, env),
        baseline: exec,
        goal: '≤ 1.5× kubectl exec',
      },
      {
        what: 'kubectl nsdebug pod/busybox -- true, CPU time (user + system, the CLI and kubectl)',
        samples: cpuOfCommand(kubectl('nsdebug', 'pod/busybox', '--', 'true'), RUNS, env),
        baseline: { what: 'kubectl exec busybox -- true', samples: cpuOfCommand(kubectl('exec', 'busybox', '--', 'true'), RUNS, env) },
        goal: '≤ 2× kubectl exec',
      },
      {
        what: 'kubectl nsdebug -it pod/busybox: until the shell prompt shows',
        samples: await timePrompt(kubectl('nsdebug', '-it', 'pod/busybox'), 10, env),
        baseline: {
          what: 'kubectl exec -it busybox -- sh',
          samples: await timePrompt(kubectl('exec', '-it', 'busybox', '--', 'sh'), 10, env),
        },
        goal: '≤ 1.5× kubectl exec',
      },
      {
        what: 'kubectl nsdebug pod/busybox --session-auth -- true (DebugSession + port-forward)',
        samples: timeCommand(kubectl('nsdebug', 'pod/busybox', '--session-auth', '--', 'true'), RUNS, env),
        baseline: exec,
      },
      {
        what: 'kubectl nsdebug pod/distroless --tools -- true (no shell in the image)',
        samples: timeCommand(kubectl('nsdebug', 'pod/distroless', '--tools', '--', 'true'), RUNS, env),
        baseline: exec,
        goal: '≤ 1 s',
      },
      {
        what: 'kubectl nsdebug --help (CLI start-up, no cluster)',
        samples: timeCommand(kubectl('nsdebug', '--help'), RUNS, env),
        baseline: execHelp,
        goal: '≤ 2× kubectl exec --help',
      },
      {
        what: 'kubectl nsdebug --version',
        samples: timeCommand(['kubectl', 'nsdebug', '--version'], RUNS, env),
        baseline: execHelp,
        goal: '≤ 2× kubectl exec --help',
      },
    ];
    const data = randomBytes(100 * 1024 * 1024);
    rows.push({
      what: '100 MiB through kubectl nsdebug -i pod/busybox -- cat',
      samples: timeCommand(kubectl('nsdebug', 'pod/busybox', '-i', '--', 'cat'), 5, env, data),
      baseline: { what: 'kubectl exec -i … cat', samples: timeCommand(kubectl('exec', '-i', 'busybox', '--', 'cat'), 5, env, data) },
      goal: '≤ 1.1× (≥ 0.9× its throughput)',
    });
    rows.push(debugTargetRow(env));
    rows.push({
      what: 'kubectl nsdebug pod/busybox -- true, peak RSS of the CLI',
      unit: 'MiB',
      samples: peakRssOfCommand(kubectl('nsdebug', 'pod/busybox', '--', 'true'), 10, env),
      baseline: { what: 'kubectl exec', samples: peakRssOfCommand(kubectl('exec', 'busybox', '--', 'true'), 10, env) },
    });
    const agents = agentServePids();
    rows.push({
      what: `agent pod's resident serve, peak RSS after ${2 * RUNS + 6} sessions`,
      unit: 'MiB',
      samples: agents.map(peakRssMiB),
      goal: '≤ 128 MiB (limit 512 MiB)',
    });
    rows.push(...agentPodRows);
    if (withLoad) rows.push(...(await loadRows(env)));
    if (withScale) rows.push(...(await scaleRows(env, image, exec)));
    return rows;
  } finally {
    if (!wasUp) run(['bash', CLUSTER, 'down']);
  }
}

/** The scale section alone: on the running e2e cluster, the agent image as images.sh has it. */
async function scaleRowsOnRunningCluster(): Promise<Row[]> {
  const status = spawnSync('bash', [CLUSTER, 'status'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (status.status !== 0) throw new Error('--only scale needs the e2e cluster running (npm run cluster:up)');
  const { env, containerdAddress } = clusterCoordinates(status.stdout);
  const image = run(['bash', `${ROOT}/test/cluster/images.sh`, 'build-agent', containerdAddress])
    .trim()
    .split('\n')
    .pop()!;
  run(['kubectl', 'nsdebug', 'install', '--session-auth', '--image', image, '--timeout', '3m'], env);
  const exec = {
    what: 'kubectl exec busybox -- true',
    samples: timeCommand(['kubectl', 'exec', '-n', 'demo', 'busybox', '--', 'true'], RUNS, env),
  };
  return scaleRows(env, image, exec);
}

/** The load section alone: on the running e2e cluster and the agent installed there, as they are. */
async function loadRowsOnRunningCluster(): Promise<Row[]> {
  const status = spawnSync('bash', [CLUSTER, 'status'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (status.status !== 0) throw new Error('--only load needs the e2e cluster running (npm run cluster:up) with the agent installed');
  const { env } = clusterCoordinates(status.stdout);
  run(['kubectl', '-n', 'nsdebug-system', 'rollout', 'status', 'daemonset/nsdebug-agent', '--timeout=2m'], env);
  run(['bash', CLUSTER, 'wait-demo'], env);
  return loadRows(env);
}

async function agentRows(): Promise<Row[]> {
  const sh = (script: string, args: string[]) =>
    execFileSync('bash', [`${ROOT}/test/support/${script}`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const address = sh('containerd.sh', ['start', DIR, '--subnet', '10.98.0.0/16', '--bridge', 'nsdbg-bench0'])
    .trim()
    .split('\n')
    .pop()!
    .replace(/^CONTAINERD_ADDRESS=/, '');
  sh('images.sh', [address]);
  const cri = new CriClient(address);
  const pod = await createPod(cri, { name: 'bench', image: IMAGES.busybox });
  const extra: ChildProcess[] = [];
  try {
    const { id, pid } = pod.container();
    const args = ['enter', `--container-id=${id}`, `--pod-uid=${pod.podUid}`, '--', 'true'];
    const nsenter = { what: 'nsenter -t PID -a true', samples: timeCommand(['nsenter', '-t', String(pid), '-a', 'true'], RUNS) };
    process.stderr.write('bench: enter vs nsenter\n');
    const serve = spawn('node', [AGENT, 'serve'], {
      env: { ...process.env, NSDEBUG_RUN_DIR: `${DIR}/run` },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    extra.push(serve);
    await new Promise<void>((resolve) => serve.stdout!.on('data', (d: Buffer) => d.toString().includes('"msg":"ready"') && resolve()));
    process.env.NSDEBUG_RUN_DIR = `${DIR}/run`;
    timeCommand([NATIVE_ENTRY, ...args], 3); // warm up
    const rows: Row[] = [
      {
        what: 'nsdebug-agent enter -- true (native entry → resident serve, as in the image)',
        samples: timeCommand([NATIVE_ENTRY, ...args], RUNS),
        baseline: nsenter,
        goal: '≤ 3× nsenter',
      },
      {
        what: 'nsdebug-agent enter -- true (per-session Node process)',
        samples: timeCommand(['node', AGENT, ...args], RUNS),
        baseline: nsenter,
      },
      { what: 'node -e 0 (the floor of any per-session Node process)', samples: timeCommand(['node', '-e', '0'], RUNS) },
    ];
    delete process.env.NSDEBUG_RUN_DIR;
    extra.push(...startIdleProcesses(10));
    const resolve = () => resolveContainer(id, pod.podUid);
    const scan = () => findByProcScan(id);
    rows.push({
      what: 'PID resolution, +10 host processes',
      samples: timeCall(resolve, 200),
      baseline: { what: 'scan of /proc/*/cgroup', samples: timeCall(scan, 20) },
      goal: '≤ 10 ms',
    });
    process.stderr.write('bench: starting 5,000 idle processes\n');
    extra.push(...startIdleProcesses(4990));
    await new Promise((r) => setTimeout(r, 2000));
    rows.push({
      what: 'PID resolution, +5,000 host processes',
      samples: timeCall(resolve, 200),
      baseline: { what: 'scan of /proc/*/cgroup', samples: timeCall(scan, 20) },
      goal: 'flat, ≤ 10 ms',
    });
    return rows;
  } finally {
    for (const p of extra) p.kill('SIGKILL');
    await pod.remove();
    cri.close();
    sh('containerd.sh', ['stop', DIR, '--purge']);
  }
}

const SECTIONS = ['cluster', 'load', 'scale', 'agent'] as const;
type Section = (typeof SECTIONS)[number];

function sectionsToRun(argv: string[]): Set<Section> {
  const { values } = parseArgs({ args: argv, options: { only: { type: 'string' } } });
  const asked = values.only?.split(',') ?? [...SECTIONS];
  const unknown = asked.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length) throw new Error(`--only: unknown section ${unknown.join(', ')} (sections: ${SECTIONS.join(', ')})`);
  return new Set(asked as Section[]);
}

async function main(): Promise<void> {
  const sections = sectionsToRun(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('npm run bench needs root: it runs containerd and enters containers');
  const rows: Row[] = [];
  if (sections.has('cluster')) rows.push(...(await clusterRows(sections.has('load'), sections.has('scale'))));
  else if (sections.has('load')) rows.push(...(await loadRowsOnRunningCluster()));
  else if (sections.has('scale')) rows.push(...(await scaleRowsOnRunningCluster()));
  if (sections.has('agent')) rows.push(...(await agentRows()));
  process.stdout.write(`\n${formatRows(rows)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(1);
});
