// Session authorization on the real cluster (deploy/session-auth/): the limited user, who holds
// no exec right on the agent, gets a session in demo, where a RoleBinding lets them create
// DebugSessions, and is refused in another namespace; nobody can create a DebugSession in another
// user's name (the admission policy); one DebugSession serves one connection, and only with its
// own secret.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { CONTRACT_VERSION, SESSION_PORT, DEBUG_SESSION_API } from '../../src/contract.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { createExecTransport } from '../../src/kube/exec.js';
import { SessionStream } from '../../src/kube/session-stream.js';
import { execa } from 'execa';

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
import { agentPodOn, slow, targetNode } from './helpers/node.js';
import { tmuxTerminal } from './helpers/tmux.js';

const env = clusterEnv();
const NODE = targetNode();
const NS = NODE.namespace;
// one per node type: the previous tier's may still be terminating
const OTHER = `nsdebug-e2e-sessions-${NODE.name}`;
const DEPLOY_SESSION_AUTH = join(process.cwd(), 'deploy', 'session-auth');
const LIMITED_USER = 'nsdebug-limited';
const limited = (args: string[], opts: Parameters<typeof kubectl>[1] = {}) =>
  kubectl(args, { ...opts, env: { KUBECONFIG: env.kubeconfigLimited } });
const text = (v: unknown) => String(v ?? '');

const bindings = [
  // debug pods in demo; reach the agents
  { kind: 'RoleBinding', namespace: NS, role: { kind: 'ClusterRole', name: 'nsdebug-session-user' } },
  { kind: 'RoleBinding', namespace: 'nsdebug-system', role: { kind: 'Role', name: 'nsdebug-session-user' } },
  // see who is debugging what (kubectl nsdebug sessions)
  { kind: 'RoleBinding', namespace: 'nsdebug-system', role: { kind: 'Role', name: 'nsdebug-session-viewer' }, name: 'e2e-session-viewer' },
  // only read pods in the other namespace
  { kind: 'RoleBinding', namespace: OTHER, role: { kind: 'Role', name: 'e2e-pod-reader' } },
].map((b) => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: b.kind,
  metadata: { name: b.name ?? 'e2e-session-user', namespace: b.namespace, labels: { [E2E_LABEL]: 'true' } },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', ...b.role },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: LIMITED_USER }],
}));

const objects = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OTHER, labels: { [E2E_LABEL]: 'true' }, annotations: NODE.nodeSelector } },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'e2e-pod-reader', namespace: OTHER, labels: { [E2E_LABEL]: 'true' } },
    rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }],
  },
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'target', namespace: OTHER, labels: { [E2E_LABEL]: 'true' } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'app', image: 'nsdebug.test/busybox:1', imagePullPolicy: 'Never', command: ['sleep', 'infinity'] }],
    },
  },
  ...bindings,
];

const debugSession = (namespace: string, spec: Record<string, unknown>) =>
  JSON.stringify({ apiVersion: DEBUG_SESSION_API, kind: 'DebugSession', metadata: { generateName: 'e2e-', namespace }, spec });

beforeAll(async () => {
  await installAgent('--session-auth');
  const applied = await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  if (applied.exitCode !== 0) throw new Error(`kubectl apply: ${text(applied.stderr)}`);
  await waitFor('pod target running', async () => {
    const pod = await kubectlJson<PodJson>(['-n', OTHER, 'get', 'pod', 'target']);
    return pod.status.phase === 'Running';
  });
}, INSTALL_SETUP_MS);

afterAll(async () => {
  // the limited user keeps only what the cluster gave it (cluster.test.ts checks that)
  for (const b of bindings) await kubectl(['-n', b.metadata.namespace, 'delete', 'rolebinding', b.metadata.name, '--ignore-not-found']);
  await kubectl(['delete', 'namespace', OTHER, '--ignore-not-found', '--wait=false']);
});

describe('session authorization (install --session-auth)', () => {
  test('the limited user has no exec on the agent, yet gets a session in demo through a DebugSession, audited in their name', async () => {
    const plain = await limited(['nsdebug', '-n', NS, 'pod/busybox', '--', 'true']);
    expect(plain.exitCode).toBe(66);

    const r = await limited(['nsdebug', '-n', NS, 'pod/busybox', '--session-auth', '--', 'sh', '-c', 'cat /etc/hostname; exit 5']);
    expect([r.exitCode, text(r.stdout).trim(), text(r.stderr)]).toEqual([5, 'busybox', '']);

    // audited by the agent on the target's node
    const logs = await kubectl(['-n', 'nsdebug-system', 'logs', await agentPodOn(NODE.name), '--tail', '50']);
    const audit = text(logs.stdout)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'session' && l.requester === LIMITED_USER);
    expect(audit.at(-1)).toMatchObject({
      pod: `${NS}/busybox`,
      exitCode: 5,
      debugSession: expect.stringMatching(new RegExp(`^${NS}/nsdebug-`)),
    });

    // nothing left behind
    const left = await kubectl(['-n', NS, 'get', 'debugsessions', '-o', 'name']);
    expect([left.exitCode, text(left.stdout)]).toEqual([0, '']);
  }, 60_000);

  test('stdin and output of any size pass through the port-forward unchanged', async () => {
    const bytes = randomBytes(3 * 1024 * 1024);
    const r = await limited(['nsdebug', '-n', NS, 'pod/busybox', '--session-auth', '-i', '--', 'md5sum'], { input: bytes });
    expect(r.exitCode).toBe(0);
    expect(text(r.stdout).split(/\s/)[0]).toBe(createHash('md5').update(bytes).digest('hex'));
  }, 60_000);

  test('refused where they may not create DebugSessions, by the CLI and by the API server', async () => {
    const r = await limited(['nsdebug', '-n', OTHER, 'pod/target', '--session-auth', '--', 'true']);
    expect(r.exitCode).toBe(66);
    expect(text(r.stderr)).toMatch(
      new RegExp(
        `^error: you may not debug pod ${OTHER}/target: missing permission create debugsessions\\.nsdebug\\.io in namespace ${OTHER}`,
      ),
    );
    const created = await limited(['create', '-f', '-'], {
      input: debugSession(OTHER, { requester: LIMITED_USER, pod: 'target', command: [], secretHash: 'a'.repeat(64) }),
    });
    expect(created.exitCode).not.toBe(0);
    expect(text(created.stderr)).toMatch(/forbidden.*cannot create resource "debugsessions"/);
  }, 60_000);

  test('a DebugSession in another user’s name is rejected by admission', async () => {
    const forged = await limited(['create', '-f', '-'], {
      input: debugSession(NS, { requester: 'nsdebug-admin', pod: 'busybox', command: ['id'], secretHash: 'a'.repeat(64) }),
    });
    expect(forged.exitCode).not.toBe(0);
    expect(text(forged.stderr)).toContain(`spec.requester must be the user creating the DebugSession (${LIMITED_USER})`);
  });

  test('a DebugSession always joins every namespace: --ns is refused by the CLI, a subset by the API server', async () => {
    const r = await limited(['nsdebug', '-n', NS, 'pod/busybox', '--session-auth', '--ns', 'net', '--tools', '--', 'true']);
    expect([r.exitCode, text(r.stderr)]).toEqual([
      64,
      'error: --ns cannot be combined with --session-auth: a DebugSession always joins every namespace of its target; drop --ns',
    ]);
    const subset = await limited(['create', '-f', '-'], {
      input: debugSession(NS, {
        requester: LIMITED_USER,
        pod: 'busybox',
        namespaces: ['net'],
        command: [],
        secretHash: 'a'.repeat(64),
      }),
    });
    expect(subset.exitCode).not.toBe(0);
    expect(text(subset.stderr)).toContain('a DebugSession joins every namespace of its target; spec.namespaces is not allowed');
    // a session sees the pod's PID 1, not the node's, and none of the agent's files
    const s = await limited([
      'nsdebug',
      '-n',
      NS,
      'pod/busybox',
      '--session-auth',
      '--tools',
      '--',
      'sh',
      '-c',
      'cat /proc/1/cmdline; ls /host /var/run/secrets/kubernetes.io 2>&1; true',
    ]);
    expect(s.exitCode).toBe(0);
    expect(text(s.stdout)).toMatch(/^sleep\0infinity\0/);
    expect(text(s.stdout)).toMatch(/\/host: No such file or directory/);
  }, 60_000);

  test('one DebugSession serves one connection, and only with its own secret', async () => {
    const secret = randomBytes(32).toString('hex');
    const admin = text((await kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'])).stdout);
    const created = await kubectl(['create', '-o', 'name', '-f', '-'], {
      input: debugSession(NS, {
        requester: admin,
        pod: 'busybox',
        command: ['cat', '/etc/hostname'],
        secretHash: createHash('sha256').update(secret).digest('hex'),
      }),
    });
    expect(created.exitCode).toBe(0);
    const name = text(created.stdout).trim().split('/')[1] as string;
    const agent = await agentPodOn(NODE.name);
    const conn = await loadKubeConfig({ kubeconfig: env.kubeconfig });
    const connect = async (presented: string) => {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      stdout.on('data', (c: Buffer) => out.push(c));
      stderr.on('data', (c: Buffer) => err.push(c));
      const code = await new SessionStream(await createExecTransport(conn)).run({
        namespace: 'nsdebug-system',
        pod: agent,
        port: SESSION_PORT,
        hello: { contract: CONTRACT_VERSION, namespace: NS, name, secret: presented },
        stdout,
        stderr,
        tty: false,
      });
      return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
    };
    try {
      expect(await connect(randomBytes(32).toString('hex'))).toEqual({
        code: 66,
        stdout: '',
        stderr: `nsdebug-agent: the secret does not match DebugSession ${NS}/${name}\n`,
      });
      expect(await connect(secret)).toEqual({ code: 0, stdout: 'busybox\n', stderr: '' });
      // served once, then deleted by the agent: nothing left, nothing to replay
      const again = await connect(secret);
      expect([again.code, again.stderr]).toEqual([66, `nsdebug-agent: there is no DebugSession ${NS}/${name}\n`]);
      const gone = await kubectl(['-n', NS, 'get', 'debugsession', name]);
      expect(text(gone.stderr)).toMatch(/NotFound/);
    } finally {
      await kubectl(['-n', NS, 'delete', 'debugsession', name, '--ignore-not-found']);
    }
  }, 60_000);

  test('status says session authorization is installed, and says so loudly when its admission policy is gone', async () => {
    const installed = await kubectl(['nsdebug', 'status']);
    expect(text(installed.stdout).split('\n')).toContain('session authorization: installed');
    const policy = ['validatingadmissionpolicybinding', 'nsdebug-debugsession-requester'];
    try {
      expect((await kubectl(['delete', ...policy])).exitCode).toBe(0);
      const broken = await kubectl(['nsdebug', 'status']);
      expect(text(broken.stdout)).toMatch(/^session authorization: BROKEN — .*requesters are not pinned/m);
      // and the agents serve no DebugSession meanwhile: anyone could name another requester
      const refused = await limited(['nsdebug', '-n', NS, 'pod/busybox', '--session-auth', '--', 'true']);
      expect([refused.exitCode, text(refused.stderr)]).toEqual([
        66,
        expect.stringMatching(
          /^nsdebug-agent: the admission policy nsdebug-debugsession-requester that pins a DebugSession's requester is not in force \(its binding is missing\); DebugSessions are not served until a cluster admin runs `kubectl nsdebug install --session-auth`$/m,
        ),
      ]);
    } finally {
      await kubectl([
        'apply',
        '--server-side',
        '--field-manager=kubectl-nsdebug',
        '-f',
        join(DEPLOY_SESSION_AUTH, 'admission-policy.yaml'),
      ]);
    }
  });

  test('a CLI killed mid-session leaves nothing: the agent ends the session and deletes its DebugSession', async () => {
    const cli = execa('kubectl', ['nsdebug', '-n', NS, 'pod/busybox', '--session-auth', '--', 'sleep', '3600'], {
      env: { KUBECONFIG: env.kubeconfigLimited },
      reject: false,
    });
    const sessions = async () => text((await kubectl(['-n', NS, 'get', 'debugsessions', '-o', 'name'])).stdout).trim();
    const sleeping = async () =>
      text((await kubectl(['nsdebug', '-n', NS, 'pod/busybox', '--', 'ps', '-o', 'args'])).stdout)
        .split('\n')
        .includes('sleep 3600');
    await waitFor('the session running', async () => (await sessions()) !== '' && (await sleeping()));
    cli.kill('SIGKILL');
    await cli;
    await waitFor('no DebugSession left', async () => (await sessions()) === '', 20_000);
    await waitFor('the session ended in the container', async () => !(await sleeping()), 20_000);
  }, 90_000);

  test("sessions lists the limited user's session in their name, and sessions kill ends it by deleting its DebugSession", async () => {
    const cli = execa('kubectl', ['nsdebug', '-n', NS, 'pod/busybox', '--session-auth', '--', 'sleep', '3599'], {
      env: { KUBECONFIG: env.kubeconfigLimited },
      reject: false,
    });
    const listed = () =>
      limited(['nsdebug', 'sessions', '-n', NS, '-o', 'json']).then(
        (r) => JSON.parse(text(r.stdout) || '[]') as Array<{ id: string; requester?: string; command: string[]; debugSession?: string }>,
      );
    const session = await waitFor('the session listed', async () => (await listed()).find((s) => s.command.join(' ') === 'sleep 3599'));
    expect(session).toMatchObject({ requester: LIMITED_USER, debugSession: expect.stringMatching(new RegExp(`^${NS}/nsdebug-`)) });
    const kill = await limited(['nsdebug', 'sessions', 'kill', session.id]);
    expect([kill.exitCode, text(kill.stderr)]).toEqual([0, `session ${session.id} (${NS}/busybox:busybox, node ${NODE.name}) ended`]);
    const ended = await cli;
    expect(ended.exitCode).toBe(74);
    expect(text(ended.stderr)).toContain('the session is revoked');
    // from outside: no DebugSession, no Lease, no process left
    await waitFor(
      'no DebugSession left',
      async () => text((await kubectl(['-n', NS, 'get', 'debugsessions', '-o', 'name'])).stdout).trim() === '',
      20_000,
    );
    await waitFor(
      'no session lease left',
      async () =>
        text((await kubectl(['-n', 'nsdebug-system', 'get', 'leases', '-l', 'nsdebug.io/session', '-o', 'name'])).stdout).trim() === '',
      20_000,
    );
    const ps = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'ps', '-o', 'args']);
    expect(text(ps.stdout).split('\n')).not.toContain('sleep 3599');
  }, 90_000);

  test('--wait through a DebugSession: the next start of a crash-looping container, entered alive', async () => {
    const flaky = busyboxPod('sa-flaky', NS, `echo attempt-$(cat /proc/uptime) > /tmp/a; sleep ${slow(2000) / 1000}; exit 1`, {
      restart: 'Always',
    });
    try {
      expect((await kubectl(['apply', '-f', '-'], { input: JSON.stringify(flaky) })).exitCode).toBe(0);
      await waitForBackOff(NS, 'sa-flaky');
      const r = await limited(['nsdebug', '-n', NS, 'pod/sa-flaky', '--session-auth', '--wait', '--timeout', '90s', '--', 'cat', '/tmp/a']);
      expect([r.exitCode, text(r.stdout)]).toEqual([0, expect.stringMatching(/^attempt-[\d.]+ [\d.]+$/)]);
      expect(text(r.stderr)).toMatch(/^nsdebug-agent: container app started \([0-9a-f]{12}\): entering it$/m);
    } finally {
      await kubectl(['-n', NS, 'delete', 'pod', 'sa-flaky', '--wait=false', '--ignore-not-found']);
    }
  }, 150_000);

  test('ps, ns and cp through DebugSessions too: the same answers, a file in and out byte for byte', async () => {
    const ps = await limited(['nsdebug', 'ps', '-n', NS, 'pod/busybox', '--session-auth', '-o', 'json']);
    expect([ps.exitCode, text(ps.stderr)]).toEqual([0, '']);
    const processes = JSON.parse(text(ps.stdout)) as Array<{ nsPids: number[]; command: string }>;
    expect(processes.find((p) => p.nsPids.at(-1) === 1)?.command).toBe('sleep infinity');

    const ns = await limited(['nsdebug', 'ns', '-n', NS, 'pod/busybox', '--session-auth', '-o', 'json']);
    expect(ns.exitCode).toBe(0);
    const kinds = (JSON.parse(text(ns.stdout)) as Array<{ kind: string }>).map((n) => n.kind);
    expect(kinds).toEqual(expect.arrayContaining(['pid', 'mnt', 'net']));

    const dir = mkdtempSync(join(tmpdir(), 'nsdebug-e2e-sa-cp-'));
    try {
      const bytes = randomBytes(1024 * 1024);
      writeFileSync(join(dir, 'in.bin'), bytes);
      const up = await limited(['nsdebug', 'cp', '-n', NS, '--session-auth', join(dir, 'in.bin'), 'pod/busybox:/tmp/sa.bin']);
      expect([up.exitCode, text(up.stderr)]).toEqual([0, '']);
      const down = await limited(['nsdebug', 'cp', '-n', NS, '--session-auth', 'pod/busybox:/tmp/sa.bin', join(dir, 'out.bin')]);
      expect([down.exitCode, text(down.stderr)]).toEqual([0, '']);
      expect(readFileSync(join(dir, 'out.bin')).equals(bytes)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await kubectl(['nsdebug', '-n', NS, 'pod/busybox', '--', 'rm', '-f', '/tmp/sa.bin']);
    }
    const left = await kubectl(['-n', NS, 'get', 'debugsessions', '-o', 'name']);
    expect(text(left.stdout)).toBe('');
  }, 90_000);

  test('an interactive session on a real terminal (tmux): the window size and its changes, the exit code', async () => {
    const { tmux, start, type, until, kill } = tmuxTerminal(`nsdebug-e2e-sa-${process.pid}`);
    try {
      const started = await start(90, 25, { PATH: process.env.PATH ?? '', KUBECONFIG: env.kubeconfigLimited });
      expect(started.exitCode).toBe(0);
      await type(`kubectl nsdebug -n ${NS} pod/busybox --session-auth; echo "EXIT=$?"`);
      await type("PS1='remote> '");
      await until('the remote prompt', /^remote> ?$/m);
      await type('stty size');
      await until('the terminal size', /^25 90$/m);
      await tmux('resize-window', '-t', 'e2e', '-x', '100', '-y', '30');
      await type('stty size');
      await until('the new size', /^30 100$/m);
      await type('exit 4');
      await until('the exit code', /^EXIT=4$/m);
    } finally {
      await kill();
    }
  }, 120_000);
});
