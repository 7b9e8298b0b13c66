// `kubectl nsdebug TARGET` end to end against a fake cluster: what is exec'd in the agent pod,
// the exit code, the notes on stderr, the order of refusals, the terminal's raw mode.
import { runDebug } from '../../../src/cli/debug.js';
import { Channel } from '../../../src/kube/exec.js';
import { agentArgv, CONTRACT_VERSION, ExitCode, Frame, type SessionRequest } from '../../../src/contract.js';

const enterArgv = (req: Omit<SessionRequest, 'tools'> & { tools?: boolean }) => agentArgv({ operation: 'enter', tools: false, ...req });
import {
  FakeAccessClient,
  FakeAgentClient,
  FakeTargetClient,
  FakeTransport,
  ID,
  UID,
  fakeAgentPod,
  fakePod,
  running,
} from '../kube/fakes.js';
import { failure } from '../kube/fakes.js';
import { fakeCluster, fakeIo } from './fakes.js';

const pods = () => [
  fakePod('busybox', { statuses: [running('app', ID('a'))] }),
  fakePod('multi', {
    containers: ['sidecar', 'app'],
    annotations: { 'kubectl.kubernetes.io/default-container': 'app' },
    statuses: [running('sidecar', ID('b')), running('app', ID('c'))],
  }),
  fakePod('two', { containers: ['first', 'second'], statuses: [running('first', ID('d')), running('second', ID('e'))] }),
  fakePod('web-1', { created: '2026-01-01T00:01:00Z' }),
  fakePod('web-2', { created: '2026-01-01T00:02:00Z' }),
  fakePod('crashloop', {
    statuses: [
      {
        name: 'app',
        restartCount: 4,
        state: { waiting: { reason: 'CrashLoopBackOff' } },
        lastState: { terminated: { exitCode: 2, reason: 'Error' } },
      },
    ],
  }),
  fakePod('elsewhere', { node: 'node-2' }),
  fakePod('crashed', {
    statuses: [
      {
        name: 'app',
        restartCount: 3,
        state: { waiting: { reason: 'CrashLoopBackOff' } },
        lastState: { terminated: { exitCode: 1, reason: 'Error', containerID: `containerd://${ID('9')}`, message: 'out of cheese' } },
      },
    ],
  }),
];

function cluster(
  parts: {
    access?: FakeAccessClient;
    agents?: FakeAgentClient;
    transport?: FakeTransport;
    nodes?: ConstructorParameters<typeof FakeTargetClient>[2];
  } = {},
) {
  return fakeCluster({
    targets: new FakeTargetClient(
      pods(),
      { 'deployment/demo/web': { matchLabels: { app: 'web' } } },
      parts.nodes ?? {},
      { 'app=web': ['web-1', 'web-2'] },
      { 'demo/crashed/app/previous': 'starting\npanic: out of cheese\n' },
    ),
    access: parts.access ?? new FakeAccessClient({ allowed: true }),
    agents: parts.agents ?? new FakeAgentClient({ 'node-1': [fakeAgentPod('node-1')] }),
    ...(parts.transport ? { transport: parts.transport } : {}),
  });
}

describe('kubectl nsdebug TARGET', () => {
  test('execs nsdebug-agent enter in the agent pod on the target node: bare container ID, pod UID', async () => {
    const c = cluster();
    const io = fakeIo();
    expect(await runDebug({ target: 'pod/multi', command: [] }, io, c)).toBe(0);
    expect(c.transport.paths[0]?.split('?')[0]).toBe('/api/v1/namespaces/nsdebug-system/pods/nsdebug-agent-node-1/exec');
    expect(c.transport.query().get('container')).toBe('agent');
    expect(c.transport.command()).toEqual([
      'nsdebug-agent',
      ...enterArgv({ containerId: ID('c'), podUid: UID, pod: 'demo/multi', container: 'app', tty: false, framed: true, command: [] }),
    ]);
    expect(c.transport.command()).toContain(`--contract=${CONTRACT_VERSION}`);
    // a shell: stdin attached; not a terminal: no TTY
    expect([c.transport.query().get('stdin'), c.transport.query().get('tty')]).toEqual(['true', 'false']);
    // the annotation chose silently, as kubectl does
    expect(io.stderr.text()).toBe('');
  });

  test("the remote command's exit code is the CLI's", async () => {
    const c = cluster({ transport: new FakeTransport((s) => s.exit(7)) });
    expect(await runDebug({ target: 'busybox', command: ['sh', '-c', 'exit 7'] }, fakeIo(), c)).toBe(7);
    expect(c.transport.command().slice(-4)).toEqual(['--', 'sh', '-c', 'exit 7']);
    // the session's frames ride the exec's stdin and stdout, with or without -i
    expect(c.transport.query().get('stdin')).toBe('true');
  });

  test('output reaches stdout and stderr', async () => {
    const io = fakeIo();
    const c = cluster({
      transport: new FakeTransport((s) => {
        s.frame(Frame.STDOUT, 'hello\n');
        s.frame(Frame.STDERR, 'warn\n');
        s.exit(0);
      }),
    });
    await runDebug({ target: 'busybox', command: ['x'] }, io, c);
    expect([io.stdout.text(), io.stderr.text()]).toEqual(['hello\n', 'warn\n']);
  });

  test('a crashed container: a post-mortem session on its last instance, announced with how it ended', async () => {
    const io = fakeIo();
    const c = cluster({ transport: new FakeTransport((s) => s.exit(0)) });
    expect(await runDebug({ target: 'crashed', command: ['ls'] }, io, c)).toBe(0);
    expect(c.transport.command()).toEqual([
      'nsdebug-agent',
      ...enterArgv({
        containerId: ID('9'),
        podUid: UID,
        pod: 'demo/crashed',
        container: 'app',
        tty: false,
        postmortem: true,
        framed: true,
        command: ['ls'],
      }),
    ]);
    expect(io.stderr.text().split('\n')).toEqual([
      "container app is not running (CrashLoopBackOff, exit code 1, 3 restarts); opening a post-mortem session on its last filesystem (read-only) in the pod's network",
      'termination message: out of cheese',
      'last log lines (--previous):',
      '  starting',
      '  panic: out of cheese',
      '',
    ]);
  });

  test("node/NAME: the agent on that node enters the node's own namespaces; exec into the agent is checked", async () => {
    const access = new FakeAccessClient({ allowed: true });
    const c = cluster({ access, transport: new FakeTransport((s) => s.exit(0)) });
    expect(await runDebug({ target: 'node/node-1', command: ['uptime'] }, fakeIo(), c)).toBe(0);
    expect(c.transport.command()).toEqual([
      'nsdebug-agent',
      ...enterArgv({ containerId: '', node: 'node-1', tty: false, framed: true, command: ['uptime'] }),
    ]);
    expect(access.questions).toEqual([expect.objectContaining({ namespace: 'nsdebug-system', resource: 'pods', subresource: 'exec' })]);
  });

  test('node/NAME takes no container flags', async () => {
    await expect(runDebug({ target: 'node/node-1', container: 'app', command: ['true'] }, fakeIo(), cluster())).rejects.toThrow(
      '-c applies to containers, not to node/node-1',
    );
  });

  test('--ns, --tools and -t reach the agent argv', async () => {
    const c = cluster();
    await runDebug(
      { target: 'busybox', ns: 'pid,mnt', tools: true, stdin: true, tty: true, command: ['ls', '/'] },
      fakeIo({ stdinIsTTY: true }),
      c,
    );
    expect(c.transport.command()).toEqual([
      'nsdebug-agent',
      ...enterArgv({
        containerId: ID('a'),
        podUid: UID,
        pod: 'demo/busybox',
        container: 'app',
        namespaces: ['pid', 'mnt'],
        tools: true,
        tty: true,
        framed: true,
        command: ['ls', '/'],
      }),
    ]);
    // the agent makes the pty; the exec carries frames, so it has none, and keeps stderr apart
    expect([c.transport.query().get('tty'), c.transport.query().get('stderr')]).toEqual(['false', 'true']);
  });

  test('--privileged reaches the agent argv and is announced on stderr, naming the node', async () => {
    const c = cluster();
    const io = fakeIo();
    await runDebug({ target: 'busybox', privileged: true, command: ['id'] }, io, c);
    expect(c.transport.command()).toContain('--privileged');
    expect(io.stderr.text()).toBe("nsdebug: --privileged: this session has the agent's full privileges on node node-1\n");
  });

  test('--user reaches the agent argv; a default session asks for neither', async () => {
    const c = cluster();
    await runDebug({ target: 'busybox', user: '1000:3000', command: ['id'] }, fakeIo(), c);
    expect(c.transport.command()).toContain('--user=1000:3000');
    const plain = cluster();
    await runDebug({ target: 'busybox', command: ['id'] }, fakeIo(), plain);
    expect(plain.transport.command().filter((a) => /^--(user|privileged)/.test(a))).toEqual([]);
  });

  test('node/NAME takes no --user or --privileged: a node shell is the node', async () => {
    await expect(runDebug({ target: 'node/node-1', user: '0', command: ['true'] }, fakeIo(), cluster())).rejects.toThrow(
      '--user applies to containers, not to node/node-1',
    );
    await expect(runDebug({ target: 'node/node-1', privileged: true, command: ['true'] }, fakeIo(), cluster())).rejects.toThrow(
      '--privileged applies to containers, not to node/node-1',
    );
  });

  test('"Defaulted container" and the picked pod on stderr; -q silences them', async () => {
    const io = fakeIo();
    await runDebug({ target: 'two', command: [] }, io, cluster());
    expect(io.stderr.text()).toBe('Defaulted container "first" out of: first, second\n');
    const deploy = fakeIo();
    await runDebug({ target: 'deploy/web', command: [] }, deploy, cluster());
    expect(deploy.stderr.text()).toBe('Found 2 pods, using pod/web-1\n');
    const quiet = fakeIo();
    await runDebug({ target: 'two', quiet: true, command: [] }, quiet, cluster());
    expect(quiet.stderr.text()).toBe('');
  });

  test('-n and the kubectl flags reach the kubeconfig loader', async () => {
    const c = cluster();
    await failure(
      runDebug(
        { target: 'pod/x', namespace: 'shop', context: 'prod', kubeconfig: '/k', 'request-timeout': '5s', command: [] },
        fakeIo(),
        c,
      ),
    );
    expect(c.kubeOptions).toEqual([{ namespace: 'shop', context: 'prod', kubeconfig: '/k', requestTimeout: '5s' }]);
  });

  test('a user who may not exec into the pod is refused before the agent is contacted', async () => {
    const c = cluster({ access: new FakeAccessClient({ allowed: false }), agents: new FakeAgentClient() });
    expect(await failure(runDebug({ target: 'busybox', command: [] }, fakeIo(), c))).toEqual({
      code: ExitCode.FORBIDDEN,
      message:
        'you may not exec into pod demo/busybox: missing permission create pods/exec in namespace demo; ask your cluster admin for it',
    });
    expect(c.transport.paths).toEqual([]);
  });

  test.each<[string, () => ReturnType<typeof cluster>, string, number, string]>([
    [
      'pod not found',
      () => cluster(),
      'nope',
      ExitCode.NOT_FOUND,
      "pod nope not found in namespace demo; check the name, or pass -n with the pod's namespace",
    ],
    [
      'no such container',
      () => cluster(),
      'multi',
      ExitCode.NOT_FOUND,
      'container "db" not found in pod demo/multi; valid names: sidecar, app',
    ],
    [
      'no agent on the node',
      () => cluster(),
      'elsewhere',
      ExitCode.AGENT_UNAVAILABLE,
      'no nsdebug agent on node node-2 (looked in namespace nsdebug-system): run `kubectl nsdebug install`',
    ],
    [
      'node not Ready',
      () =>
        cluster({
          nodes: {
            'node-1': {
              status: { conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'PLEG is not healthy' }] },
            },
          },
        }),
      'busybox',
      ExitCode.AGENT_UNAVAILABLE,
      'node node-1 is not Ready (KubeletNotReady: PLEG is not healthy)',
    ],
    [
      'crash loop',
      () => cluster(),
      'crashloop',
      ExitCode.NOT_RUNNING,
      'container app of pod demo/crashloop is not running: waiting (CrashLoopBackOff), last exit code 2 (Error), restarted 4 times',
    ],
  ])('%s: one line, its exit code, no exec', async (_, make, target, code, message) => {
    const c = make();
    const f = await failure(runDebug({ target, command: [], ...(target === 'multi' ? { container: 'db' } : {}) }, fakeIo(), c));
    expect(f.code).toBe(code);
    expect(f.message).toContain(message);
    expect(c.transport.paths).toEqual([]);
  });

  test('a container that is not running is what the user hears, whatever the access review (asked alongside) says', async () => {
    const allowed = cluster();
    const denied = cluster({ access: new FakeAccessClient({ allowed: false }) });
    const [a, d] = [
      await failure(runDebug({ target: 'crashloop', command: [] }, fakeIo(), allowed)),
      await failure(runDebug({ target: 'crashloop', command: [] }, fakeIo(), denied)),
    ];
    expect(d).toEqual(a);
    expect(a.code).not.toBe(ExitCode.FORBIDDEN);
    expect(allowed.transport.paths).toEqual([]);
  });

  test('a TTY session: raw mode once the stream is open, restored at the end and on failure', async () => {
    const io = fakeIo({ stdinIsTTY: true });
    await runDebug({ target: 'busybox', command: [] }, io, cluster());
    expect(io.terminal.events).toEqual(['raw', 'restore']);

    const failing = fakeIo({ stdinIsTTY: true });
    const c = cluster({ transport: new FakeTransport((s) => s.drop(1006)) });
    expect((await failure(runDebug({ target: 'busybox', command: [] }, failing, c))).code).toBe(ExitCode.CONNECTION_LOST);
    expect(failing.terminal.events).toEqual(['raw', 'restore']);
  });

  test('no raw mode without a TTY', async () => {
    const io = fakeIo({ stdinIsTTY: false });
    await runDebug({ target: 'busybox', command: [] }, io, cluster());
    expect(io.terminal.events).toEqual([]);
  });

  test("the agent's contract refusal is explained; a remote command's own 68 is not", async () => {
    const mismatch = cluster({
      transport: new FakeTransport((s) => {
        s.serve(
          Channel.STDERR,
          'nsdebug-agent: this agent speaks contract version 2, the CLI sent "1": use a CLI and an agent from the same release (kubectl nsdebug status)\n',
        );
        s.exit(ExitCode.CONTRACT_MISMATCH);
      }),
    });
    const io = fakeIo();
    const f = await failure(runDebug({ target: 'busybox', command: ['true'] }, io, mismatch));
    expect(f.code).toBe(ExitCode.CONTRACT_MISMATCH);
    expect(f.message).toBe(
      `the agent on node node-1 and this kubectl-nsdebug (contract ${CONTRACT_VERSION}) are from different releases; upgrade one of them, e.g. \`kubectl nsdebug install\` with this CLI (\`kubectl nsdebug status\` shows both)`,
    );
    expect(io.stderr.text()).toContain('nsdebug-agent: this agent speaks contract version 2');

    const own = cluster({ transport: new FakeTransport((s) => s.exit(68)) });
    expect(await runDebug({ target: 'busybox', command: ['sh', '-c', 'exit 68'] }, fakeIo(), own)).toBe(68);
  });

  test('progress on stderr only when it is a terminal, erased before the session', async () => {
    const tty = fakeIo({ stderrIsTTY: true });
    await runDebug({ target: 'busybox', command: [] }, tty, cluster());
    expect(tty.stderr.text()).toContain('connecting to the agent on node node-1…');
    expect(tty.stderr.text().endsWith('\r\x1b[2K')).toBe(true);
    const piped = fakeIo({ stderrIsTTY: false });
    await runDebug({ target: 'busybox', command: [] }, piped, cluster());
    expect(piped.stderr.text()).toBe('');
  });

  test('usage errors come before any cluster access', async () => {
    const c = cluster();
    expect((await failure(runDebug({ target: 'pod/x', ns: 'bogus', command: [] }, fakeIo(), c))).code).toBe(ExitCode.USAGE);
    expect(c.kubeOptions).toEqual([]);
  });
});
