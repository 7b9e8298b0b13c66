// `npm run bench`: one run, one table. Agent rows use a private containerd and a kubelet-style
// pod (test/support); they compare `nsdebug-agent enter` with `nsenter` on the same container.
// PID resolution is timed with 10 and with 5,000 extra processes on the host.
// Needs root. Prints a Markdown table on stdout; progress on stderr.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { findByProcScan, resolveContainer } from '../../src/agent/resolve.js';
import { CriClient } from '../support/cri.js';
import { createPod, IMAGES } from '../support/pods.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const AGENT = `${ROOT}/bin/nsdebug-agent.js`;
const NATIVE_ENTRY = `${ROOT}/native/nsdebug-agent`;
const DIR = process.env.NSDEBUG_BENCH_DIR ?? '/tmp/nsdebug-bench';

export interface Row {
  what: string;
  samples: number[];
  baseline?: { what: string; samples: number[] };
  goal?: string;
}

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
};
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));

export function formatRows(rows: Row[]): string {
  const lines = [
    '| measurement | median ms | p95 ms | compared with | its median ms | ratio | goal |',
    '|---|---:|---:|---|---:|---:|---|',
  ];
  for (const r of rows) {
    const median = quantile(r.samples, 0.5);
    const base = r.baseline ? quantile(r.baseline.samples, 0.5) : NaN;
    lines.push(
      `| ${r.what} | ${ms(median)} | ${ms(quantile(r.samples, 0.95))} | ${r.baseline?.what ?? ''} | ${r.baseline ? ms(base) : ''} | ${r.baseline ? `${(median / base).toFixed(1)}×` : ''} | ${r.goal ?? ''} |`,
    );
  }
  return lines.join('\n');
}

function timeCommand(argv: string[], runs: number): number[] {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    samples.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
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
    const nsenter = { what: 'nsenter -t PID -a true', samples: timeCommand(['nsenter', '-t', String(pid), '-a', 'true'], 30) };
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
        samples: timeCommand([NATIVE_ENTRY, ...args], 30),
        baseline: nsenter,
        goal: '≤ 3× nsenter',
      },
      {
        what: 'nsdebug-agent enter -- true (per-session Node process)',
        samples: timeCommand(['node', AGENT, ...args], 30),
        baseline: nsenter,
      },
      { what: 'node -e 0 (the floor of any per-session Node process)', samples: timeCommand(['node', '-e', '0'], 30) },
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

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('npm run bench needs root: it runs containerd and enters containers');
  const rows = await agentRows();
  process.stdout.write(`\n${formatRows(rows)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(1);
});
