// `kubectl nsdebug ns TARGET` against a fake cluster: container names for IDs, the table, JSON.
import { formatNamespaceTable, namePodNamespaces, parseAgentNamespaces, runNs } from '../../../src/cli/ns.js';
import { Channel } from '../../../src/kube/exec.js';
import { ExitCode, type NamespaceInfo } from '../../../src/contract.js';
import { FakeAgentClient, FakeTargetClient, FakeTransport, ID, UID, agentCommand, fakeAgentPod, fakePod, running } from '../kube/fakes.js';
import { fakeCluster, fakeIo } from './fakes.js';

const SANDBOX = ID('f');
const pod = fakePod('web-0', { containers: ['app', 'sidecar'], statuses: [running('sidecar', ID('b')), running('app', ID('a'))] });

const entries: NamespaceInfo[] = [
  { kind: 'user', inode: 4026531837, containers: [ID('b'), SANDBOX, ID('a')], node: true, processes: 3, hostPid: 10, command: '/pause' },
  { kind: 'net', inode: 4026532318, containers: [ID('a'), SANDBOX, ID('b')], node: false, processes: 3, hostPid: 10, command: '/pause' },
  { kind: 'pid', inode: 4026532472, containers: [SANDBOX], node: false, level: 1, processes: 1, hostPid: 10, command: '/pause' },
  { kind: 'pid', inode: 4026532870, containers: [ID('a')], node: false, level: 1, processes: 1, hostPid: 20, command: 'nginx' },
  {
    kind: 'pid',
    inode: 4026532900,
    containers: [],
    nestedIn: ID('a'),
    node: false,
    level: 2,
    processes: 2,
    hostPid: 25,
    command: 'sleep 100',
  },
];

describe('naming and the table', () => {
  test('IDs become container names, the sandbox first, then the spec order; nested ones name their container', () => {
    const named = namePodNamespaces(entries, pod);
    expect(named.map((e) => e.sharedBy)).toEqual([
      ['node', 'sandbox', 'app', 'sidecar'],
      ['sandbox', 'app', 'sidecar'],
      ['sandbox'],
      ['app'],
      [],
    ]);
    expect(named[4]).toMatchObject({ nestedIn: 'app', level: 2 });
    expect(named[0]).not.toHaveProperty('containers');
  });

  test('lsns columns with LEVEL and SHARED BY', () => {
    expect(formatNamespaceTable(namePodNamespaces(entries, pod))).toBe(
      [
        'NS           TYPE   LEVEL   NPROCS   HOST PID   SHARED BY                     COMMAND',
        '4026531837   user   -       3        10         node, sandbox, app, sidecar   /pause',
        '4026532318   net    -       3        10         sandbox, app, sidecar         /pause',
        '4026532472   pid    1       1        10         sandbox                       /pause',
        '4026532870   pid    1       1        20         app                           nginx',
        '4026532900   pid    2       2        25         nested in app                 sleep 100',
        '',
      ].join('\n'),
    );
  });

  test.each([
    ['not json', 'printed no namespace list'],
    ['{"a":1}', 'printed no namespace list'],
    ['[{"kind":"pid","inode":"1"}]', 'malformed namespace entry #0'],
    ['[{"kind":"bogus","inode":1,"containers":[],"node":false,"processes":1,"hostPid":1,"command":""}]', 'malformed namespace entry #0'],
  ])('parseAgentNamespaces(%s)', (text, message) => {
    expect(() => parseAgentNamespaces(text, 'the agent')).toThrow(message);
  });
});

describe('kubectl nsdebug ns TARGET', () => {
  const cluster = (script: ConstructorParameters<typeof FakeTransport>[0]) =>
    fakeCluster({
      targets: new FakeTargetClient([pod]),
      agents: new FakeAgentClient({ 'node-1': [fakeAgentPod('node-1')] }),
      transport: new FakeTransport(script),
    });

  test('asks the agent for the pod, prints the table, and no note on a defaulted container', async () => {
    const c = cluster((s) => (s.serve(Channel.STDOUT, `${JSON.stringify(entries)}\n`), s.exit(0)));
    const io = fakeIo();
    expect(await runNs({ target: 'web-0' }, io, c)).toBe(0);
    expect(c.transport.command()).toEqual(agentCommand('ns', `--pod-uid=${UID}`));
    expect(io.stdout.text()).toBe(formatNamespaceTable(namePodNamespaces(entries, pod)));
    expect(io.stderr.text()).toBe('');
  });

  test('-o json', async () => {
    const io = fakeIo();
    await runNs(
      { target: 'web-0', output: 'json' },
      io,
      cluster((s) => (s.serve(Channel.STDOUT, JSON.stringify(entries)), s.exit(0))),
    );
    expect(JSON.parse(io.stdout.text())).toEqual(namePodNamespaces(entries, pod));
  });

  test("the agent's refusal, with its exit code", async () => {
    const c = cluster((s) => {
      s.serve(Channel.STDERR, `nsdebug-agent: pod ${UID} has no running processes on this node: it has ended or runs on another node\n`);
      s.exit(ExitCode.NOT_FOUND);
    });
    await expect(runNs({ target: 'web-0' }, fakeIo(), c)).rejects.toMatchObject({
      exitCode: ExitCode.NOT_FOUND,
      message: `the agent on node node-1 could not list the namespaces of pod demo/web-0: pod ${UID} has no running processes on this node: it has ended or runs on another node`,
    });
  });
});
