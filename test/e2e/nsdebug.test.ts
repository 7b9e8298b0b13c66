// `kubectl nsdebug TARGET` and `kubectl nsdebug ps` on the real single-node cluster
// (test/cluster), every case through kubectl's plugin lookup (test/e2e/run.sh puts bin/, which
// holds `kubectl-nsdebug`, first on PATH). The demo workloads are test/cluster/manifests/demo.yaml.
// After every case: no new pods, no ephemeral containers, and no processes left in the targets.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Options, Result } from 'execa';

import {
  clusterEnv,
  E2E_LABEL,
  INSTALL_SETUP_MS,
  installAgent,
  isReady,
  kubectl,
  kubectlJson,
  waitFor,
  type PodJson,
} from './helpers/kube.js';
import { agentPodOn, targetNode } from './helpers/node.js';
import { tmuxTerminal } from './helpers/tmux.js';

const env = clusterEnv();
const NODE = targetNode();
const NS = NODE.namespace;
const AGENT_NS = 'nsdebug-system';

/** `kubectl nsdebug ARGS`: kubectl's plugin lookup, never the script directly. */
const nsdebug = (args: string[], opts: Options = {}): Promise<Result> => kubectl(['nsdebug', ...args], opts);
const text = (v: unknown) => String(v ?? '');
const lines = (v: unknown) => text(v).split('\n').filter(Boolean);

interface Target {
  pod: string;
  container: string;
  /** has busybox's ps, so kubectl exec can list its processes independently of nsdebug */
  busybox: boolean;
}
const TARGETS: Record<string, Target> = {
  busybox: { pod: 'busybox', container: 'busybox', busybox: true },
  distroless: { pod: 'distroless', container: 'app', busybox: false },
  multiApp: { pod: 'multi', container: 'app', busybox: true },
  multiSidecar: { pod: 'multi', container: 'sidecar', busybox: true },
  sharedPid: { pod: 'shared-pid', container: 'app', busybox: true },
};

/** The target's processes as "PID args" lines, without the listing itself. */
async function processes(t: Target): Promise<string[]> {
  if (t.busybox) {
    const r = await kubectl(['-n', NS, 'exec', t.pod, '-c', t.container, '--', 'ps', '-o', 'pid,args']);
    if (r.exitCode !== 0) throw new Error(`ps in ${t.pod}/${t.container}: ${text(r.stderr)}`);
    return lines(r.stdout)
      .slice(1)
      .map((l) => l.trim().replace(/\s+/g, ' '))
      .filter((l) => !/^\d+ ps -o pid,args$/.test(l))
      .sort();
  }
  const r = await nsdebug(['-n', NS, 'ps', `pod/${t.pod}`, '-c', t.container, '-o', 'json']);
  if (r.exitCode !== 0) throw new Error(`nsdebug ps ${t.pod}: ${text(r.stderr)}`);
  return (JSON.parse(text(r.stdout)) as Array<{ nsPids: number[]; command: string }>).map((p) => `${p.nsPids[1]} ${p.command}`).sort();
}

async function podUids(): Promise<string[]> {
  // other suites install and uninstall the agent and create their own namespaces meanwhile
  const excluded = new Set(
    lines(
      (await kubectl(['get', 'namespaces', '-l', `${E2E_LABEL}=true`, '-o', 'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}']))
        .stdout,
    ),
  );
  const all = await kubectlJson<{ items: PodJson[] }>(['get', 'pods', '-A']);
  return all.items
    .filter((p) => !excluded.has(p.metadata.namespace) && !p.metadata.namespace.startsWith('nsdebug-') && !p.metadata.labels?.[E2E_LABEL])
    .map((p) => `${p.metadata.namespace}/${p.metadata.name}/${p.metadata.uid}`)
    .sort();
}

async function ephemeralContainers(): Promise<string[]> {
  const pods = await kubectlJson<{ items: Array<PodJson & { spec: { ephemeralContainers?: Array<{ name: string }> } }> }>([
    '-n',
    NS,
    'get',
    'pods',
  ]);
  return pods.items.flatMap((p) => (p.spec.ephemeralContainers ?? []).map((c) => `${p.metadata.name}/${c.name}`));
}

let baselinePods: string[];
const baselineProcesses = new Map<Target, string[]>();
/** the targets the running case touched: their processes are compared afterwards */
let touched = new Set<Target>();
const touch = (...targets: Target[]) => targets.forEach((t) => touched.add(t));

beforeAll(async () => {
  // kubectl must find the plugin by its name on PATH, as a user's kubectl would
  const plugins = await kubectl(['plugin', 'list', '--name-only']);
  expect(lines(plugins.stdout)).toContain('kubectl-nsdebug');
  // the agent: install is idempotent (server-side apply) and waits for the rollout
  await installAgent();
  for (const name of ['busybox', 'distroless', 'multi', 'shared-pid']) {
    await waitFor(`pod ${name} Ready`, async () => isReady(await kubectlJson<PodJson>(['-n', NS, 'get', 'pod', name])));
  }
  await waitFor(
    'deploy/web ready',
    async () =>
      (await kubectlJson<{ status: { readyReplicas?: number } }>(['-n', NS, 'get', 'deployment', 'web'])).status.readyReplicas === 2,
  );
  baselinePods = await podUids();
  for (const t of Object.values(TARGETS)) baselineProcesses.set(t, await processes(t));
}, INSTALL_SETUP_MS);

beforeEach(() => {
  touched = new Set();
});

afterEach(async () => {
  expect(await podUids()).toEqual(baselinePods);
  expect(await ephemeralContainers()).toEqual([]);
  for (const t of touched) {
    // a session's processes die with it; give the kernel a moment to reap them
    const left = await waitFor(
      `no processes left in ${t.pod}/${t.container}`,
      async () => {
        const now = await processes(t);
        return JSON.stringify(now) === JSON.stringify(baselineProcesses.get(t)) ? now : undefined;
      },
      15_000,
    ).catch(async () => processes(t));
    expect(left).toEqual(baselineProcesses.get(t));
  }
}, 120_000);

describe('kubectl nsdebug TARGET on a real cluster', () => {
  test("a shell in the busybox pod sees the container's PID and mount namespaces", async () => {
    touch(TARGETS.busybox);
    const marker = `marker-${randomBytes(6).toString('hex')}`;
    const write = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'sh', '-c', `echo ${marker} > /tmp/nsdebug-e2e-marker`]);
    expect(write.exitCode).toBe(0);
    const reference = await kubectl([
      '-n',
      NS,
      'exec',
      'busybox',
      '--',
      'sh',
      '-c',
      'readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt',
    ]);
    expect(lines(reference.stdout)).toEqual([expect.stringMatching(/^pid:\[\d+\]$/), expect.stringMatching(/^mnt:\[\d+\]$/)]);
    // no command: an interactive shell, reading this script from stdin (not a terminal: no TTY)
    const script = [
      'readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt',
      'cat /tmp/nsdebug-e2e-marker',
      'xargs -0 echo < /proc/1/cmdline',
      'exit 0',
      '',
    ].join('\n');
    const r = await nsdebug(['-n', NS, 'pod/busybox'], { input: script });
    expect([r.exitCode, text(r.stderr)]).toEqual([0, '']);
    expect(lines(r.stdout)).toEqual([...lines(reference.stdout), marker, 'sleep infinity']);
  }, 120_000);

  test('the distroless pod (no shell) answers `ls /`: a shell falls back to the toolbox; --tools too', async () => {
    touch(TARGETS.distroless);
    const shell = await nsdebug(['-n', NS, 'pod/distroless'], { input: 'ls /\nexit\n' });
    expect(shell.exitCode).toBe(0);
    expect(lines(shell.stdout)).toContain('app');
    const tools = await nsdebug(['-n', NS, 'pod/distroless', '--tools', '--', 'ls', '/']);
    expect(tools.exitCode).toBe(0);
    expect(lines(tools.stdout)).toContain('app');
  }, 120_000);

  test("multi: the default-container annotation (silently), -c the other; their env is the container's", async () => {
    touch(TARGETS.multiApp, TARGETS.multiSidecar);
    const byDefault = await nsdebug(['-n', NS, 'pod/multi', '--', 'sh', '-c', 'echo $ROLE']);
    expect([byDefault.exitCode, text(byDefault.stdout).trim(), text(byDefault.stderr)]).toEqual([0, 'app', '']);
    const sidecar = await nsdebug(['-n', NS, 'pod/multi', '-c', 'sidecar', '--', 'sh', '-c', 'echo $ROLE']);
    expect([sidecar.exitCode, text(sidecar.stdout).trim()]).toEqual([0, 'sidecar']);
    const ref = await kubectl(['-n', NS, 'exec', 'multi', '-c', 'sidecar', '--', 'readlink', '/proc/self/ns/mnt']);
    const mnt = await nsdebug(['-n', NS, 'pod/multi', '-c', 'sidecar', '--', 'readlink', '/proc/self/ns/mnt']);
    expect(text(mnt.stdout)).toBe(text(ref.stdout));
    const unknown = await nsdebug(['-n', NS, 'pod/multi', '-c', 'db', '--', 'true']);
    expect([unknown.exitCode, lines(unknown.stderr)]).toEqual([
      65,
      [`error: container "db" not found in pod ${NS}/multi; valid names: sidecar, app`],
    ]);
  }, 120_000);

  test('deploy/web resolves to one ready pod and says which', async () => {
    const r = await nsdebug(['-n', NS, 'deploy/web', '--', 'hostname']);
    expect(r.exitCode).toBe(0);
    const hostname = text(r.stdout).trim();
    expect(hostname).toMatch(/^web-[a-z0-9]+-[a-z0-9]+$/);
    expect(lines(r.stderr)).toEqual([`Found 2 pods, using pod/${hostname}`]);
  }, 120_000);

  test("the remote command's exit code is the CLI's", async () => {
    touch(TARGETS.busybox);
    const seven = await nsdebug(['-n', NS, 'pod/busybox', '--', 'sh', '-c', 'exit 7']);
    expect([seven.exitCode, text(seven.stderr)]).toEqual([7, '']);
    const zero = await nsdebug(['-n', NS, 'pod/busybox', '--', 'true']);
    expect(zero.exitCode).toBe(0);
    const notFound = await nsdebug(['-n', NS, 'pod/busybox', '--', 'no-such-command-here']);
    expect(notFound.exitCode).toBe(127);
  }, 120_000);

  test("a session is audited by the agent on the target's node, and by no other", async () => {
    touch(TARGETS.busybox);
    const marker = `audit-${randomBytes(6).toString('hex')}`;
    const r = await nsdebug(['-n', NS, 'pod/busybox', '--', 'echo', marker]);
    expect([r.exitCode, text(r.stdout).trim()]).toEqual([0, marker]);
    const agents = await kubectlJson<{ items: PodJson[] }>(['-n', AGENT_NS, 'get', 'pods', '-l', 'app.kubernetes.io/name=nsdebug-agent']);
    const audited: string[] = [];
    for (const agent of agents.items) {
      const logs = await kubectl(['-n', AGENT_NS, 'logs', agent.metadata.name, '-c', 'agent', '--tail', '-1']);
      if (lines(logs.stdout).some((l) => l.includes('"msg":"session"') && l.includes(marker))) audited.push(agent.spec.nodeName ?? '?');
    }
    expect(audited).toEqual([NODE.name]);
  }, 120_000);

  test('10 MB of random bytes go through `cat` intact', async () => {
    touch(TARGETS.busybox);
    const input = randomBytes(10 * 1024 * 1024);
    const r = await nsdebug(['-n', NS, 'pod/busybox', '-i', '--', 'cat'], {
      input,
      encoding: 'buffer',
      stripFinalNewline: false,
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(r.exitCode).toBe(0);
    const output = Buffer.from(r.stdout as unknown as Uint8Array);
    expect(output.length).toBe(input.length);
    expect(createHash('sha256').update(output).digest('hex')).toBe(createHash('sha256').update(input).digest('hex'));
  }, 180_000);

  test('a command that never reads its stdin still ends, with its exit code, when 5 MB are piped in', async () => {
    touch(TARGETS.busybox);
    const r = await nsdebug(['-n', NS, 'pod/busybox', '-i', '--', 'sh', '-c', 'exit 3'], {
      input: randomBytes(5 * 1024 * 1024),
      timeout: 60_000,
    });
    expect([r.exitCode, r.timedOut]).toEqual([3, false]);
  }, 90_000);

  test('an interactive session on a real terminal (tmux): prompt, resize, ^C, exit code, terminal restored', async () => {
    touch(TARGETS.busybox);
    const dir = mkdtempSync(join(tmpdir(), 'nsdebug-e2e-tty-'));
    const { tmux, screen, start, type, until, kill } = tmuxTerminal(`nsdebug-e2e-${process.pid}`);
    /** "ROWS COLS" as `stty size` prints it */
    const paneSize = async () => text((await tmux('display-message', '-p', '-t', 'e2e', '#{pane_height} #{pane_width}')).stdout).trim();
    try {
      const started = await start(80, 24, { PATH: process.env.PATH ?? '', KUBECONFIG: env.kubeconfig });
      expect(started.exitCode).toBe(0);
      await type('echo local-ready');
      // the local shell first (tmux and sh alone; slow only when the machine is, e.g. under the VM nodes' TCG)
      await until('the local shell', /^local-ready$/m);
      // after the session: the exit code, and the local terminal's modes (raw mode must be gone)
      await type(`kubectl nsdebug -n ${NS} pod/busybox; echo "EXIT=$?"; stty -a > ${dir}/stty`);
      await type("PS1='remote> '");
      await until('the remote prompt', /^remote> ?$/m);
      await type('stty size');
      const before = await paneSize();
      await until(`the pane's size (${before})`, new RegExp(`^${before}$`, 'm'));
      await tmux('resize-window', '-t', 'e2e', '-x', '100', '-y', '30');
      const after = await paneSize();
      expect(after).not.toBe(before);
      await type('stty size');
      await until(`the resize followed (${after})`, new RegExp(`^${after}$`, 'm'));
      await type('sleep 100; echo not-interrupted');
      await new Promise((r) => setTimeout(r, 1500));
      await tmux('send-keys', '-t', 'e2e', 'C-c');
      await type('echo after-interrupt');
      await until('^C interrupted the sleep', /^after-interrupt$/m, 10_000);
      expect(await screen()).not.toMatch(/^not-interrupted$/m);
      await type('exit 3');
      await until('the session ended with 3', /^EXIT=3$/m);
      const stty = await waitFor(
        'stty -a written',
        async () => {
          const s = readFileSync(join(dir, 'stty'), 'utf8');
          return s.includes('icanon') ? s : undefined;
        },
        10_000,
      );
      expect(stty).toMatch(/(^|\s)icanon(\s|;|$)/);
      expect(stty).toMatch(/(^|\s)echo(\s|;|$)/);
      expect(stty).not.toMatch(/-icanon|(^|\s)-echo(\s|;|$)/);
    } finally {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  test('a user who may not exec into the pod is refused before the agent is contacted', async () => {
    const pod = await agentPodOn(NODE.name);
    const since = new Date().toISOString();
    const r = await nsdebug(['--kubeconfig', env.kubeconfigLimited, '-n', NS, 'pod/busybox', '--', 'true']);
    expect(r.exitCode).toBe(66);
    expect(lines(r.stderr)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^error: you may not exec into pod ${NS}/busybox: missing permission create pods/exec in namespace ${NS}( \\(.*\\))?; ask your cluster admin for it$`,
        ),
      ),
    ]);
    // the agent never saw it: no session in its log since
    await new Promise((res) => setTimeout(res, 1000));
    const logs = lines((await kubectl(['-n', AGENT_NS, 'logs', pod, '-c', 'agent', `--since-time=${since}`])).stdout);
    // (--since-time is in whole seconds: the previous case's session may be listed; compare starts)
    const sessions = logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg?: string; pod?: string; start?: string });
    expect(sessions.filter((s) => s.msg === 'session' && s.pod === `${NS}/busybox` && (s.start ?? '') >= since)).toEqual([]);
  }, 120_000);

  test('a container that never ran (its image is not on the node) gets the not-running message with its state', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'no-image', namespace: NS, labels: { [E2E_LABEL]: 'true' } },
      spec: {
        terminationGracePeriodSeconds: 0,
        securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'app',
            image: 'nsdebug.test/not-built:1',
            imagePullPolicy: 'Never',
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    };
    expect((await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) })).exitCode).toBe(0);
    try {
      await waitFor('no-image waiting for its image', async () => {
        const s = (await kubectlJson<PodJson>(['-n', NS, 'get', 'pod', 'no-image'])).status.containerStatuses?.[0];
        return s?.state.waiting?.reason === 'ErrImageNeverPull';
      });
      const r = await nsdebug(['-n', NS, 'pod/no-image', '--', 'true']);
      expect(r.exitCode).toBe(70);
      expect(lines(r.stderr)).toEqual([
        expect.stringMatching(
          new RegExp(
            `^error: container app of pod ${NS}/no-image is not running: waiting \\(ErrImageNeverPull: .*\\), restarted 0 times; see \`kubectl logs -n ${NS} no-image -c app\`$`,
          ),
        ),
      ]);
    } finally {
      await kubectl(['-n', NS, 'delete', 'pod', 'no-image', '--grace-period=0', '--wait=false']);
    }
  }, 180_000);

  test('errors are one line with their own exit codes', async () => {
    const missing = await nsdebug(['-n', NS, 'pod/no-such-pod']);
    expect([missing.exitCode, lines(missing.stderr)]).toEqual([
      65,
      [`error: pod no-such-pod not found in namespace ${NS}; check the name, or pass -n with the pod's namespace`],
    ]);
    const usage = await nsdebug(['-n', NS, 'pod/busybox', 'ls']);
    expect(usage.exitCode).toBe(64);
    expect(lines(usage.stderr)).toHaveLength(1);
    const noAgent = await nsdebug(['-n', NS, 'pod/busybox', '--agent-namespace', 'no-agent-here', '--', 'true']);
    expect(noAgent.exitCode).toBe(67);
    expect(lines(noAgent.stderr)).toEqual([
      expect.stringMatching(/^error: no nsdebug agent on node \S+ \(looked in namespace no-agent-here\): run `kubectl nsdebug install`/),
    ]);
  }, 120_000);
});

describe("kubectl's completion of kubectl nsdebug (kubectl_complete-nsdebug on PATH)", () => {
  /** kubectl's own completion entry point, as the shell's completion script calls it */
  const completions = async (...words: string[]) => {
    const r = await kubectl(['__complete', 'nsdebug', ...words]);
    expect(r.exitCode).toBe(0);
    return lines(r.stdout);
  };

  test('targets, namespaces, containers and flags come from the cluster and the CLI', async () => {
    expect(await completions('-n', NS, 'deploy/')).toEqual(['deploy/web', ':4']);
    expect(await completions('-n', NS, 'dis')).toEqual(['distroless', ':4']);
    const names = async (kind: string) =>
      lines((await kubectl(['get', kind, '-o', 'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}'])).stdout).sort();
    expect(await completions('-n', 'de')).toEqual([...(await names('namespaces')).filter((n) => n.startsWith('de')), ':4']);
    expect(await completions('-n', NS, 'pod/multi', '-c', '')).toEqual(['app', 'sidecar', ':4']);
    expect(await completions('-n', NS, 'ps', '-o', '')).toEqual(['json', 'table', ':4']);
    expect(await completions('node/')).toEqual([...(await names('nodes')).map((n) => `node/${n}`), ':4']);
    // the limited user may list pods in demo, not namespaces: no candidates, and no error text
    expect(await completions('--kubeconfig', env.kubeconfigLimited, '-n', NS, 'bus')).toEqual(['busybox', ':4']);
    expect(await completions('--kubeconfig', env.kubeconfigLimited, '-n', '')).toEqual([':4']);
  }, 60_000);
});

describe('kubectl nsdebug ps on a real cluster', () => {
  test('the busybox pod: host PID ↔ PID 1 in the container, sleep infinity', async () => {
    const json = await nsdebug(['-n', NS, 'ps', 'pod/busybox', '-o', 'json']);
    expect(json.exitCode).toBe(0);
    const list = JSON.parse(text(json.stdout)) as Array<{
      hostPid: number;
      nsPids: number[];
      user: string;
      state: string;
      command: string;
    }>;
    const sleep = list.find((p) => p.command === 'sleep infinity');
    expect(sleep?.nsPids[1]).toBe(1);
    expect(sleep?.hostPid).toBeGreaterThan(1);
    expect(sleep?.nsPids[0]).toBe(sleep?.hostPid);

    const table = await nsdebug(['-n', NS, 'ps', 'pod/busybox']);
    expect(table.exitCode).toBe(0);
    const [header, ...rows] = lines(table.stdout);
    expect(header).toMatch(/^HOST PID\s+PID\s+NESTED\s+USER\s+STAT\s+START\s+COMMAND$/);
    expect(rows).toContainEqual(expect.stringMatching(new RegExp(`^${sleep?.hostPid}\\s+1\\s+-\\s+\\S+\\s+S\\s+\\S+\\s+sleep infinity$`)));
  }, 120_000);

  test("shared-pid: both containers' processes, deploy/web through its selector", async () => {
    const shared = await nsdebug(['-n', NS, 'ps', 'pod/shared-pid', '-c', 'app']);
    expect(shared.exitCode).toBe(0);
    expect(text(shared.stdout)).toContain('sleep infinity');
    const web = await nsdebug(['-n', NS, 'ps', 'deploy/web', '-o', 'json']);
    expect(web.exitCode).toBe(0);
    expect((JSON.parse(text(web.stdout)) as Array<{ command: string }>).map((p) => p.command)).toContain('httpd -f -p 8080 -h /tmp');
  }, 120_000);
});
