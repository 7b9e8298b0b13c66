import { parseAgentArgs } from '../../../src/agent/args.js';
import { CONTRACT_VERSION, cpArgv, enterArgv, ExitCode } from '../../../src/contract.js';
import { NsdebugError } from '../../../src/errors.js';

const ID = 'a'.repeat(64);
const UID = '8d2f3c1e-5b4a-4c3d-9e8f-7a6b5c4d3e2f';

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
      subcommand: 'enter',
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

  test('cp round-trips: what cpArgv sends is what the agent reads', () => {
    const up = parseAgentArgs(
      cpArgv({ containerId: ID, podUid: UID, to: '/tmp/a b', name: 'x.bin', size: 5, mode: 0o4755, mtimeMs: 1700000000123.4 }),
    );
    expect(up.copy).toEqual({ path: '/tmp/a b', upload: { name: 'x.bin', size: 5, mode: 0o4755, mtimeMs: 1700000000123 } });
    expect(parseAgentArgs(cpArgv({ containerId: ID, from: 'rel/path' })).copy).toEqual({ path: 'rel/path', upload: undefined });
  });

  test('--postmortem round-trips', () => {
    expect(parseAgentArgs(enterArgv({ containerId: ID, podUid: UID, container: 'app', postmortem: true, command: [] }))).toMatchObject({
      postmortem: true,
      podUid: UID,
      container: 'app',
    });
    expect(parseAgentArgs(enterArgv({ containerId: ID, command: [] })).postmortem).toBe(false);
  });

  test('--privileged and --user round-trip; a session is confined unless asked', () => {
    expect(parseAgentArgs(enterArgv({ containerId: ID, privileged: true, command: [] }))).toMatchObject({
      privileged: true,
      user: undefined,
    });
    expect(parseAgentArgs(enterArgv({ containerId: ID, user: { uid: 1000, gid: 3000 }, command: [] }))).toMatchObject({
      privileged: false,
      user: { uid: 1000, gid: 3000 },
    });
    expect(parseAgentArgs(enterArgv({ containerId: ID, user: { uid: 0 }, command: [] })).user).toEqual({ uid: 0 });
    expect(enterArgv({ containerId: ID, user: { uid: 0 }, command: [] })).toContain('--user=0');
    expect(parseAgentArgs(enterArgv({ containerId: ID, command: [] }))).toMatchObject({ privileged: false, user: undefined });
  });

  test('no command means an interactive shell', () => {
    expect(parseAgentArgs(['enter', `--container-id=${ID}`]).command).toEqual([]);
  });

  test.each([
    [['enter'], ExitCode.USAGE, '--container-id is required'],
    [['enter', '--container-id=abc'], ExitCode.USAGE, '64 lowercase hex'],
    [['enter', `--container-id=${ID.toUpperCase()}`], ExitCode.USAGE, '64 lowercase hex'],
    [['enter', `--container-id=${ID}`, '--pod-uid=nope'], ExitCode.USAGE, 'UUID'],
    [['enter', `--container-id=${ID}`, '--ns=pid,bogus'], ExitCode.USAGE, 'unknown namespace "bogus"'],
    [['enter', `--container-id=${ID}`, '--ns='], ExitCode.USAGE, 'unknown namespace ""'],
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
