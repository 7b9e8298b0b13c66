// `kubectl nsdebug ps TARGET` against a fake cluster, and its table.
import { runPs } from '../../../src/cli/ps.js';
import { formatProcessTable, formatStart, parseProcessList } from '../../../src/cli/output.js';
import { Channel } from '../../../src/kube/exec.js';
import { ExitCode, type ProcessInfo } from '../../../src/contract.js';
import { NsdebugError } from '../../../src/errors.js';
import { FakeAgentClient, FakeTargetClient, FakeTransport, ID, UID, agentCommand, fakeAgentPod, fakePod, running } from '../kube/fakes.js';
import { fakeCluster, fakeIo } from './fakes.js';

const NOW = new Date('2026-03-10T12:00:00');
const local = (y: number, mo: number, d: number, h: number, mi: number) => new Date(y, mo - 1, d, h, mi).toISOString();

const processes: ProcessInfo[] = [
  {
    hostPid: 4242,
    nsPids: [4242, 1],
    nestLevel: 0,
    ppid: 4200,
    uid: 0,
    user: 'root',
    state: 'S',
    startTime: local(2026, 3, 10, 9, 5),
    command: 'nginx: master process nginx -g daemon off;',
  },
  {
    hostPid: 4300,
    nsPids: [4300, 7],
    nestLevel: 0,
    ppid: 4242,
    uid: 101,
    user: 'nginx',
    state: 'S',
    startTime: local(2026, 3, 8, 9, 6),
    command: 'nginx: worker process',
  },
  {
    hostPid: 4400,
    nsPids: [4400, 9, 1],
    nestLevel: 1,
    ppid: 4242,
    uid: 1000,
    user: '',
    state: 'R',
    startTime: local(2026, 3, 10, 11, 59),
    command: 'sleep 100',
  },
];

function cluster(script: ConstructorParameters<typeof FakeTransport>[0]) {
  return fakeCluster({
    targets: new FakeTargetClient([fakePod('web-0', { statuses: [running('app', ID('a'))] })]),
    agents: new FakeAgentClient({ 'node-1': [fakeAgentPod('node-1')] }),
    transport: new FakeTransport(script),
  });
}

describe('the ps table', () => {
  test('host PID, container PID, nested PIDs, user, state, start, command', () => {
    expect(formatProcessTable(processes, NOW)).toBe(
      [
        'HOST PID   PID   NESTED   USER    STAT   START   COMMAND',
        '4242       1     -        root    S      09:05   nginx: master process nginx -g daemon off;',
        '4300       7     -        nginx   S      Mar08   nginx: worker process',
        '4400       9     1        1000    R      11:59   sleep 100',
        '',
      ].join('\n'),
    );
  });
  test("nested PIDs as the agent's table shows them: nestLevel below the container's, outermost first", () => {
    // the agent itself in a nested PID namespace (a kind node): the container's is not the second
    const deep = { ...processes[2]!, nsPids: [4400, 300, 9, 5, 1], nestLevel: 2 };
    expect(formatProcessTable([deep], NOW).split('\n')[1]).toMatch(/^4400 +9 +5>1 +1000 /);
    expect(formatProcessTable([{ ...processes[0]!, nsPids: [4242, 600, 1] }], NOW).split('\n')[1]).toMatch(/^4242 +1 +- /);
  });
  test('a process in the host PID namespace shows its host PID inside too', () => {
    expect(formatProcessTable([{ ...processes[0]!, nsPids: [4242] }], NOW).split('\n')[1]).toMatch(/^4242 +4242 +- /);
  });
  test('formatStart', () => {
    expect(formatStart('not a time', NOW)).toBe('?');
    expect(formatStart(local(2025, 12, 24, 8, 0), NOW)).toBe('Dec24');
  });
});

describe('parseProcessList', () => {
  test.each([
    ['not json', 'printed no process list'],
    ['{"a":1}', 'not a process list'],
    ['[{"hostPid":"1"}]', 'malformed process entry #0'],
  ])('%s', (text, message) => {
    expect(() => parseProcessList(text)).toThrow(message);
  });
});

describe('kubectl nsdebug ps TARGET', () => {
  test('runs nsdebug-agent ps in the agent pod and prints the table', async () => {
    const c = cluster((s) => {
      s.serve(Channel.STDOUT, JSON.stringify(processes).slice(0, 50));
      s.serve(Channel.STDOUT, `${JSON.stringify(processes).slice(50)}\n`);
      s.exit(0);
    });
    const io = fakeIo();
    expect(await runPs({ target: 'web-0' }, io, c, NOW)).toBe(0);
    expect(c.transport.command()).toEqual(agentCommand('ps', `--container-id=${ID('a')}`, `--pod-uid=${UID}`, '--output=json'));
    expect(c.transport.query().get('stdin')).toBe('false');
    expect(io.stdout.text()).toBe(formatProcessTable(processes, NOW));
  });

  test('-o json passes the list on', async () => {
    const io = fakeIo();
    await runPs(
      { target: 'web-0', output: 'json' },
      io,
      cluster((s) => (s.serve(Channel.STDOUT, JSON.stringify(processes)), s.exit(0))),
      NOW,
    );
    expect(JSON.parse(io.stdout.text())).toEqual(processes);
  });

  test("the agent's failure, in its own words, with its exit code", async () => {
    const c = cluster((s) => {
      s.serve(Channel.STDERR, `nsdebug-agent: container ${'a'.repeat(12)} not found on this node: it may have just exited\n`);
      s.exit(ExitCode.NOT_FOUND);
    });
    try {
      await runPs({ target: 'web-0' }, fakeIo(), c);
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(NsdebugError);
      expect((err as NsdebugError).exitCode).toBe(ExitCode.NOT_FOUND);
      expect((err as NsdebugError).message).toBe(
        `the agent on node node-1 could not list the processes of container app of pod demo/web-0: container ${'a'.repeat(12)} not found on this node: it may have just exited`,
      );
    }
  });

  test('an exit code that is not one of ours is internal', async () => {
    await expect(
      runPs(
        { target: 'web-0' },
        fakeIo(),
        cluster((s) => s.exit(137)),
      ),
    ).rejects.toMatchObject({ exitCode: ExitCode.INTERNAL, message: expect.stringContaining('it exited 137 without a message') });
  });
});
