import { parseAgentArgs } from '../../../src/agent/args.js';
import { validateAgentRequest } from '../../../src/agent/request.js';
import { agentArgv, CONTRACT_VERSION, ExitCode, SESSION_FLAGS, type CopyRequest, type SessionRequest } from '../../../src/contract.js';
import { NsdebugError } from '../../../src/errors.js';

const ID = 'a'.repeat(64);
const UID = '8d2f3c1e-5b4a-4c3d-9e8f-7a6b5c4d3e2f';

const enterArgv = (req: Partial<SessionRequest>) =>
  agentArgv({ operation: 'enter', containerId: ID, tools: false, tty: false, command: [], ...req });
const cpArgv = (req: CopyRequest) => agentArgv({ operation: 'cp', ...req });

function failure(argv: string[]): { code: number; message: string } {
  try {
    parseAgentArgs(argv);
  } catch (err) {
    if (err instanceof NsdebugError) return { code: err.exitCode, message: err.message };
    throw err;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

describe('nsdebug-agent argv', () => {
  test('the CLI side of the contract parses back to the same request', () => {
    const argv = enterArgv({
      containerId: ID,
      podUid: UID,
      pod: 'shop/web-0',
      container: 'app',
      namespaces: ['pid', 'mnt'],
      tools: true,
      tty: true,
      command: ['sh', '-c', 'echo --ns=x'],
    });
    expect(parseAgentArgs(argv)).toMatchObject({
      operation: 'enter',
      containerId: ID,
      podUid: UID,
      pod: 'shop/web-0',
      container: 'app',
      namespaces: ['pid', 'mnt'],
      tools: true,
      tty: true,
      command: ['sh', '-c', 'echo --ns=x'],
    });
  });

  test('every field of a session request round-trips through argv, by the one table of its flags', () => {
    const container: SessionRequest = {
      containerId: ID,
      podUid: UID,
      pod: 'shop/web-0',
      container: 'app',
      namespaces: ['pid', 'mnt', 'net'],
      tools: true,
      tty: true,
      readOnly: true,
      process: 42,
      privileged: false,
      user: { uid: 1000, gid: 3000 },
      postmortem: false,
      framed: true,
      command: ['sh', '-c', 'echo --tty'],
    };
    const waiting: SessionRequest = { ...container, readOnly: false, user: undefined, process: undefined, waitSeconds: 90 };
    const node: SessionRequest = { containerId: '', node: 'worker-1.example', tools: false, tty: true, command: [] };
    for (const req of [container, waiting, node]) {
      const defined = Object.fromEntries(Object.entries(req).filter(([, v]) => v !== undefined));
      expect(parseAgentArgs(agentArgv({ operation: 'enter', ...req }))).toEqual({
        operation: 'enter',
        tools: false,
        tty: false,
        readOnly: false,
        privileged: false,
        postmortem: false,
        framed: false,
        ...defined,
      });
    }
    expect(Object.keys(SESSION_FLAGS).sort()).toEqual(
      Object.keys(container)
        .filter((k) => k !== 'command')
        .concat('waitSeconds', 'node')
        .sort(),
    );
  });

  test('cp round-trips: what cpArgv sends is what the agent reads', () => {
    const up = parseAgentArgs(
      cpArgv({ containerId: ID, podUid: UID, to: '/tmp/a b', name: 'x.bin', size: 5, mode: 0o4755, mtimeMs: 1700000000123.4 }),
    );
    expect(up).toEqual({
      operation: 'cp',
      containerId: ID,
      podUid: UID,
      to: '/tmp/a b',
      name: 'x.bin',
      size: 5,
      mode: 0o4755,
      mtimeMs: 1700000000123,
    });
    expect(parseAgentArgs(cpArgv({ containerId: ID, from: 'rel/path' }))).toEqual({ operation: 'cp', containerId: ID, from: 'rel/path' });
  });

  test.each<[string, CopyRequest]>([
    ['a tree out', { containerId: ID, podUid: UID, from: '/var/log', recursive: true }],
    ['a tree out of a dead container', { containerId: ID, podUid: UID, from: 'logs', recursive: true, postmortem: true, container: 'app' }],
    ['one file out of a dead container', { containerId: ID, podUid: UID, from: '/etc/x', postmortem: true, container: 'app' }],
    ['a tree in, below its name', { containerId: ID, podUid: UID, to: '/etc/app', tree: true, name: 'conf' }],
    ['a tar stream in', { containerId: ID, to: '/scratch', tree: true }],
  ])('cp -r round-trips: %s', (_what, req) => {
    expect(parseAgentArgs(cpArgv(req))).toEqual({ operation: 'cp', ...req });
  });

  test('--postmortem round-trips', () => {
    expect(parseAgentArgs(enterArgv({ containerId: ID, podUid: UID, container: 'app', postmortem: true, command: [] }))).toMatchObject({
      postmortem: true,
      podUid: UID,
      container: 'app',
    });
    expect(parseAgentArgs(enterArgv({ containerId: ID, command: [] }))).toMatchObject({ postmortem: false });
  });

  test('--privileged and --user round-trip; a session is confined unless asked', () => {
    expect(parseAgentArgs(enterArgv({ containerId: ID, privileged: true, command: [] }))).toMatchObject({ privileged: true });
    expect(parseAgentArgs(enterArgv({ containerId: ID, privileged: true, command: [] }))).not.toHaveProperty('user');
    expect(parseAgentArgs(enterArgv({ containerId: ID, user: { uid: 1000, gid: 3000 }, command: [] }))).toMatchObject({
      privileged: false,
      user: { uid: 1000, gid: 3000 },
    });
    expect(parseAgentArgs(enterArgv({ containerId: ID, user: { uid: 0 }, command: [] }))).toMatchObject({ user: { uid: 0 } });
    expect(enterArgv({ containerId: ID, user: { uid: 0 }, command: [] })).toContain('--user=0');
    expect(parseAgentArgs(enterArgv({ containerId: ID, command: [] }))).toMatchObject({ privileged: false });
    expect(parseAgentArgs(enterArgv({ containerId: ID, command: [] }))).not.toHaveProperty('user');
  });

  test('no command means an interactive shell', () => {
    expect(parseAgentArgs(['enter', `--container-id=${ID}`])).toMatchObject({ command: [] });
  });

  test.each([
    [['enter'], ExitCode.USAGE, '--container-id is required'],
    [['enter', '--container-id=abc'], ExitCode.USAGE, '64 lowercase hex'],
    [['enter', `--container-id=${ID.toUpperCase()}`], ExitCode.USAGE, '64 lowercase hex'],
    [['enter', `--container-id=${ID}`, '--pod-uid=nope'], ExitCode.USAGE, 'UUID'],
    [['enter', `--container-id=${ID}`, '--ns=pid,bogus'], ExitCode.USAGE, 'unknown namespace kind "bogus"'],
    [['enter', `--container-id=${ID}`, '--ns='], ExitCode.USAGE, '--ns: empty namespace kind'],
    [['enter', `--container-id=${ID}`, '--frobnicate'], ExitCode.USAGE, 'unknown option --frobnicate'],
    [['enter', `--container-id=${ID}`, 'ls'], ExitCode.USAGE, 'put the command after --'],
    [['enter', `--container-id=${ID}`, '--pod=UPPER/x'], ExitCode.USAGE, '--pod must be NAMESPACE/NAME'],
    [['enter', `--container-id=${ID}`, '--container=a b'], ExitCode.USAGE, '--container must be'],
    [['ps', `--container-id=${ID}`, '-o', 'yaml'], ExitCode.USAGE, '--output must be table or json'],
    [['enter', `--container-id=${ID}`, '--postmortem', '--ns=pid'], ExitCode.USAGE, 'it takes no --process, --read-only or --ns'],
    [['enter', `--container-id=${ID}`, '--postmortem', '--read-only'], ExitCode.USAGE, 'it takes no --process, --read-only or --ns'],
    [
      ['enter', `--contract=${CONTRACT_VERSION + 1}`, `--container-id=${ID}`],
      ExitCode.CONTRACT_MISMATCH,
      `speaks contract version ${CONTRACT_VERSION}, the CLI sent "${CONTRACT_VERSION + 1}"`,
    ],
    [['launch'], ExitCode.USAGE, 'unknown subcommand "launch"'],
    [['enter', `--container-id=${ID}`, '--user=root'], ExitCode.USAGE, '--user must be UID or UID:GID'],
    [['enter', `--container-id=${ID}`, '--user=1000:'], ExitCode.USAGE, '--user must be UID or UID:GID'],
    [['enter', `--container-id=${ID}`, '--user=-1'], ExitCode.USAGE, '--user must be UID or UID:GID'],
    [['enter', `--container-id=${ID}`, '--user=4294967295'], ExitCode.USAGE, '--user must be UID or UID:GID'],
    [['enter', `--container-id=${ID}`, '--user=0', '--privileged'], ExitCode.USAGE, 'choose one'],
    [['enter', '--node=worker-1', '--privileged'], ExitCode.USAGE, 'not to --node or --postmortem'],
    [['enter', `--container-id=${ID}`, `--pod-uid=${UID}`, '--postmortem', '--user=0'], ExitCode.USAGE, 'not to --node or --postmortem'],
    [['enter', `--container-id=${ID}`, `--pod-uid=${UID}`, '--postmortem'], ExitCode.USAGE, '--postmortem needs --pod-uid and --container'],
    [['enter', `--container-id=${ID}`, '--container=app', '--postmortem'], ExitCode.USAGE, '--postmortem needs --pod-uid and --container'],
    [['cp', `--container-id=${ID}`], ExitCode.USAGE, 'cp needs exactly one of --from PATH (copy out) and --to PATH (copy in)'],
    [['cp', `--container-id=${ID}`, '--from=/a', '--to=/b'], ExitCode.USAGE, 'cp needs exactly one of'],
    [['cp', `--container-id=${ID}`, '--from=/a', '--size=3'], ExitCode.USAGE, '--size is for --to (copy in)'],
    [
      ['cp', `--container-id=${ID}`, '--to=/a', '--name=../x', '--size=1', '--mode=644', '--mtime=1'],
      ExitCode.USAGE,
      '--name must be a file name',
    ],
    [
      ['cp', `--container-id=${ID}`, '--to=/a', '--name=x', '--size=-1', '--mode=644', '--mtime=1'],
      ExitCode.USAGE,
      '--size is required with --to',
    ],
    [
      ['cp', `--container-id=${ID}`, '--to=/a', '--name=x', '--size=1', '--mode=999', '--mtime=1'],
      ExitCode.USAGE,
      '--mode is required with --to',
    ],
    [['cp', '--from=/a'], ExitCode.USAGE, '--container-id is required'],
    [['cp', `--container-id=${ID}`, '--to=/a', '--recursive'], ExitCode.USAGE, '--recursive is for --from (copy out), not --to'],
    [['cp', `--container-id=${ID}`, '--from=/a', '--tree'], ExitCode.USAGE, '--tree is for --to (copy in), not --from'],
    [['cp', `--container-id=${ID}`, '--to=/a', '--tree', '--size=3'], ExitCode.USAGE, '--size is for one file (without --tree)'],
    [['cp', `--container-id=${ID}`, '--from=/a', '--container=app'], ExitCode.USAGE, '--container is for --postmortem'],
    [
      ['cp', `--container-id=${ID}`, `--pod-uid=${UID}`, '--from=/a', '--postmortem'],
      ExitCode.USAGE,
      '--postmortem needs --container NAME',
    ],
    [['cp', `--container-id=${ID}`, '--from=/a', '--postmortem', '--container=app'], ExitCode.USAGE, '--postmortem needs --pod-uid'],
    [['cp', `--container-id=${ID}`, '--to=/a', '--tree', '--name=a/b'], ExitCode.USAGE, '--name must be a file name'],
    [['ns'], ExitCode.USAGE, '--pod-uid is required'],
    [['ns', '--pod-uid=../../etc'], ExitCode.USAGE, '--pod-uid must be a UUID'],
    [['ns', `--pod-uid=${UID}`, '--container-id', ID], ExitCode.USAGE, 'unknown option --container-id'],
  ])('%j → exit %i', (argv, code, message) => {
    const f = failure(argv);
    expect(f.code).toBe(code);
    expect(f.message).toContain(message);
  });

  test('errors are one line except the usage text', () => {
    expect(failure(['enter', '--container-id=abc']).message).not.toContain('\n');
  });
});

describe('validateAgentRequest: the typed request, as a DebugSession brings it, meets the same rules', () => {
  const enter = (req: Partial<SessionRequest>) => ({
    operation: 'enter' as const,
    containerId: ID,
    tools: false,
    tty: false,
    command: [],
    ...req,
  });
  test.each([
    ['a process that is not a PID', enter({ process: 0 }), '--process must be a PID'],
    ['a fractional wait', enter({ waitSeconds: 1.5, podUid: UID, container: 'app' }), '--wait must be a number of seconds'],
    ['a user ID past the kernel range', enter({ user: { uid: 2 ** 32 } }), '--user must be UID or UID:GID'],
    ['--read-only without the mount namespace', enter({ readOnly: true, namespaces: ['pid'] }), '--read-only needs the mount namespace'],
    ['a NUL inside the command', enter({ command: ['cat', '/etc/hosts\0x'] }), 'without NUL bytes'],
    ['an unknown namespace kind', enter({ namespaces: ['bogus' as never] }), 'unknown namespace kind "bogus"'],
  ])('refuses %s', (_what, req, message) => {
    expect(() => validateAgentRequest(req)).toThrow(message);
  });
  test.each([
    ['a name with a slash', { name: 'a/b', size: 1, mode: 0o644, mtimeMs: 1 }, '--name must be a file name'],
    ['a negative size', { name: 'x', size: -1, mode: 0o644, mtimeMs: 1 }, '--size must be a number of bytes'],
    ['mode bits past 7777', { name: 'x', size: 1, mode: 0o17777, mtimeMs: 1 }, '--mode must be permission bits'],
  ])('refuses a cp with %s', (_what, upload, message) => {
    expect(() => validateAgentRequest({ operation: 'cp', containerId: ID, to: '/tmp', ...upload })).toThrow(message);
  });
  test('what argv decodes to is what the validator accepts', () => {
    const req = parseAgentArgs(enterArgv({ podUid: UID, container: 'app', process: 7, user: { uid: 1000, gid: 1000 }, command: ['id'] }));
    expect(validateAgentRequest(req as SessionRequest & { operation: 'enter' })).toBe(req);
  });
});
