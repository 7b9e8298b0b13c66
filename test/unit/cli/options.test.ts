// Table tests over argv, as kubectl's TestCompleteAndValidate: the command's own flag
// definitions parse the argv, then complete() and validate() run; errors are the lines a user
// sees (src/cli/failure.ts) with their exit codes.
import { Parser } from '@oclif/core';

import Debug from '../../../commands/index.js';
import Ps from '../../../commands/ps.js';
import { ExitCode, parseNamespaceKinds } from '../../../src/contract.js';
import {
  completeDebug,
  completePs,
  splitCommand,
  targetRef,
  validateDebug,
  validatePs,
  type DebugOptions,
  type ProcessFacts,
  type PsOptions,
} from '../../../src/cli/options.js';
import { refusal } from './fakes.js';

const TERMINAL: ProcessFacts = { stdinIsTTY: true, stderrIsTTY: true };
const PIPED: ProcessFacts = { stdinIsTTY: false, stderrIsTTY: false };

async function debugOptions(argv: string[], facts = TERMINAL): Promise<DebugOptions> {
  const { flags: rest, command } = splitCommand(argv);
  const { args, flags } = await Parser.parse(rest, { flags: Debug.flags, args: Debug.args, strict: true });
  const opts = completeDebug({ ...flags, ...(args.target !== undefined ? { target: args.target } : {}), command }, facts);
  validateDebug(opts);
  return opts;
}

async function psOptions(argv: string[]): Promise<PsOptions> {
  const { args, flags } = await Parser.parse(argv, { flags: Ps.flags, args: Ps.args, strict: true });
  const opts = completePs({ ...flags, ...(args.target !== undefined ? { target: args.target } : {}) }, PIPED);
  validatePs(opts);
  return opts;
}

describe('splitCommand', () => {
  test('everything after the first -- is the command, verbatim and in order', () => {
    expect(splitCommand(['pod/x', '-n', 'a', '--', 'sh', '-c', 'echo pod/x', '--', 'pod/x'])).toEqual({
      flags: ['pod/x', '-n', 'a'],
      command: ['sh', '-c', 'echo pod/x', '--', 'pod/x'],
    });
    expect(splitCommand(['pod/x'])).toEqual({ flags: ['pod/x'], command: [] });
  });
});

describe('kubectl nsdebug TARGET: accepted argv', () => {
  test.each<[string, string[], ProcessFacts, Partial<DebugOptions>]>([
    [
      'a shell on a terminal gets stdin and a TTY',
      ['pod/web-0'],
      TERMINAL,
      { target: 'pod/web-0', stdin: true, tty: true, command: [], progress: true },
    ],
    ['a shell without a terminal: stdin, no TTY, no warning', ['web-0'], PIPED, { stdin: true, tty: false, warnings: [], progress: false }],
    ['a command: no stdin, no TTY', ['pod/web-0', '--', 'ls', '-l'], TERMINAL, { stdin: false, tty: false, command: ['ls', '-l'] }],
    ['-i with a command', ['pod/web-0', '-i', '--', 'cat'], PIPED, { stdin: true, tty: false }],
    ['-it with a command on a terminal', ['pod/web-0', '-it', '--', 'top'], TERMINAL, { stdin: true, tty: true }],
    ['--no-tty for a shell', ['pod/web-0', '--no-tty'], TERMINAL, { stdin: true, tty: false }],
    [
      '-t without -i for a command is dropped with a warning',
      ['pod/web-0', '-t', '--', 'top'],
      TERMINAL,
      { tty: false, warnings: ['-t needs stdin: running without a TTY; pass -it for an interactive command'] },
    ],
    [
      "-t with stdin not a terminal is dropped, kubectl's words",
      ['pod/web-0', '-t'],
      PIPED,
      { tty: false, warnings: ['Unable to use a TTY - input is not a terminal or the right kind of file'] },
    ],
    [
      'kubectl flags',
      ['deploy/web', '-n', 'shop', '--context', 'prod', '--kubeconfig', '/k', '--request-timeout', '5s', '-c', 'app'],
      TERMINAL,
      { target: 'deploy/web', container: 'app', kube: { namespace: 'shop', context: 'prod', kubeconfig: '/k', requestTimeout: '5s' } },
    ],
    ['flags after the target, = form', ['-n=shop', 'sts/db', '--container=db'], TERMINAL, { kube: { namespace: 'shop' }, container: 'db' }],
    ['-l instead of a target', ['-l', 'app=web,tier in (a,b)'], TERMINAL, { selector: 'app=web,tier in (a,b)' }],
    [
      '--ns, --tools, --agent-namespace, -q',
      ['pod/x', '--ns', 'pid,mnt', '--tools', '--agent-namespace', 'debug', '-q'],
      TERMINAL,
      { ns: 'pid,mnt', tools: true, agentNamespace: 'debug', quiet: true },
    ],
    ['the agent namespace defaults to nsdebug-system', ['pod/x'], TERMINAL, { agentNamespace: 'nsdebug-system', debug: false }],
    ['--debug', ['pod/x', '--debug'], TERMINAL, { debug: true }],
    ['a flag-looking command word after --', ['pod/x', '--', '--help'], TERMINAL, { command: ['--help'] }],
    ['--wait waits 5 minutes by default', ['pod/x', '--wait'], TERMINAL, { waitSeconds: 300 }],
    ['--wait --timeout', ['pod/x', '--wait', '--timeout', '1m30s'], TERMINAL, { waitSeconds: 90 }],
    ['--read-only and --process', ['pod/x', '--read-only', '--process', '13'], TERMINAL, { readOnly: true, process: 13 }],
    ['a node', ['node/worker-1', '--', 'uptime'], TERMINAL, { target: 'node/worker-1', command: ['uptime'] }],
    ['sessions are confined by default', ['pod/x'], TERMINAL, { privileged: false }],
    ['--privileged', ['pod/x', '--privileged'], TERMINAL, { privileged: true }],
    ['--user UID', ['pod/x', '--user', '0'], TERMINAL, { user: { uid: 0 }, privileged: false }],
    ['--user UID:GID', ['pod/x', '--user=1000:3000'], TERMINAL, { user: { uid: 1000, gid: 3000 } }],
  ])('%s', async (_, argv, facts, expected) => {
    expect(await debugOptions(argv, facts)).toMatchObject(expected);
  });
});

describe('kubectl nsdebug TARGET: refused argv, one line, exit 64', () => {
  test.each<[string[], string]>([
    [
      [],
      'error: name a target: kubectl nsdebug pod/NAME (or deploy/, statefulset/, daemonset/, replicaset/, job/, service/NAME, or -l SELECTOR); see --help',
    ],
    [['pod/x', '-l', 'app=web'], 'error: a target (pod/x) and -l/--selector cannot be used together; drop one of them'],
    [['pod/x', 'ls'], 'error: unexpected argument "ls": put the remote command after --, e.g. kubectl nsdebug pod/NAME -- ls /'],
    [['pod/x', '--frobnicate'], 'error: unknown flag --frobnicate; see kubectl nsdebug --help'],
    [['pod/x', '-n'], 'error: flag --namespace expects a value'],
    [
      ['cm/x'],
      'error: unknown target type "cm" in "cm/x"; use pod/, deploy/, statefulset/, daemonset/, replicaset/, job/ or service/ followed by a name',
    ],
    [['pod/Web'], "error: \"Web\" is not a valid pod name (lowercase letters, digits, '-' and '.'); check the spelling"],
    [['pod/x', '-c', 'App_1'], 'error: -c/--container "App_1" is not a container name (lowercase letters, digits and \'-\')'],
    [
      ['pod/x', '--ns', 'pid,bogus'],
      'error: --ns: unknown namespace kind "bogus"; use a comma-separated list of user, cgroup, ipc, uts, net, pid, mnt, time',
    ],
    [
      ['pod/x', '--ns', 'pid,'],
      'error: --ns: empty namespace kind; use a comma-separated list of user, cgroup, ipc, uts, net, pid, mnt, time',
    ],
    [['pod/x', '-n', 'Shop'], 'error: -n/--namespace "Shop" is not a namespace name (lowercase letters, digits and \'-\')'],
    [['pod/x', '--agent-namespace', 'a.b'], 'error: --agent-namespace "a.b" is not a namespace name (lowercase letters, digits and \'-\')'],
    [['pod/x', '--request-timeout', 'soon'], 'error: --request-timeout must be a duration like 30s, 2m or 0 (no limit), not "soon"'],
    [['-l', ''], 'error: -l/--selector "" is not a label selector; use e.g. -l app=web or -l \'tier in (web,api)\''],
    [['pod/x', '--', ''], 'error: the command after -- is empty; give a program name, e.g. -- ls /'],
    // flag relations oclif checks (declared with the flags)
    [['pod/x', '--timeout', '10s'], 'error: all of the following must be provided when using --timeout: --wait'],
    [['pod/x', '--privileged', '--user', '0'], 'error: --user=0 cannot also be provided when using --privileged'],
    [['pod/x', '--wait', '--timeout', 'later'], 'error: --timeout must be a duration like 30s, 2m or 0 (no limit), not "later"'],
    [['pod/x', '--wait', '--timeout', '0'], 'error: --timeout must be between 1s and 27h for --wait, not "0"'],
    [['pod/x', '--read-only', '--ns', 'pid'], 'error: --read-only needs the mount namespace: add mnt to --ns'],
    [['pod/x', '--process', '0'], 'error: --process must be a PID inside the container (see kubectl nsdebug ps), not "0"'],
    [
      ['pod/x', '--session-auth', '--ns', 'net'],
      'error: --ns cannot be combined with --session-auth: a DebugSession always joins every namespace of its target; drop --ns',
    ],
    [
      ['pod/x', '--privileged', '--session-auth'],
      "error: --privileged cannot be combined with --session-auth: a DebugSession never grants the agent's privileges; drop one of them",
    ],
    [
      ['pod/x', '--user', 'root'],
      'error: --user must be UID or UID:GID, numbers as the container knows them (e.g. 0 or 1000:1000), not "root"',
    ],
    [
      ['pod/x', '--user', '1000:x'],
      'error: --user must be UID or UID:GID, numbers as the container knows them (e.g. 0 or 1000:1000), not "1000:x"',
    ],
  ])('%j', async (argv, line) => {
    expect(await refusal(debugOptions(argv))).toEqual({ line, exitCode: ExitCode.USAGE });
  });

  test.each<[string[], string]>([
    [
      ['pod/x', '--privileged'],
      "error: --privileged cannot be combined with --session-auth: a DebugSession never grants the agent's privileges; drop one of them",
    ],
    [['pod/x', '--user', '1000'], 'error: --user is not available with --session-auth yet; drop --user'],
  ])('%j with NSDEBUG_SESSION_AUTH=1', async (argv, line) => {
    const withEnv = async () => {
      const { flags: rest, command } = splitCommand(argv);
      const { args, flags } = await Parser.parse(rest, { flags: Debug.flags, args: Debug.args, strict: true });
      validateDebug(completeDebug({ ...flags, target: args.target as string, command }, TERMINAL, { NSDEBUG_SESSION_AUTH: '1' }));
    };
    expect(await refusal(withEnv())).toEqual({ line, exitCode: ExitCode.USAGE });
  });
});

describe('kubectl nsdebug ps TARGET', () => {
  test.each<[string[], Partial<PsOptions>]>([
    [['pod/web-0'], { target: 'pod/web-0', output: 'table' }],
    [
      ['deploy/web', '-c', 'sidecar', '-o', 'json', '-n', 'shop'],
      { target: 'deploy/web', container: 'sidecar', output: 'json', kube: { namespace: 'shop' } },
    ],
    [['-l', 'app=web'], { selector: 'app=web' }],
  ])('%j', async (argv, expected) => expect(await psOptions(argv)).toMatchObject(expected));

  test.each<[string[], string]>([
    [['pod/x', '-o', 'yaml'], 'error: expected --output=yaml to be one of: table, json'],
    [
      [],
      'error: name a target: kubectl nsdebug pod/NAME (or deploy/, statefulset/, daemonset/, replicaset/, job/, service/NAME, or -l SELECTOR); see --help',
    ],
    [['pod/x', '--', 'ls'], 'error: unexpected argument "ls": put the remote command after --, e.g. kubectl nsdebug pod/NAME -- ls /'],
  ])('%j is refused', async (argv, line) => expect(await refusal(psOptions(argv))).toEqual({ line, exitCode: ExitCode.USAGE }));
});

describe('helpers', () => {
  test('parseNamespaceKinds keeps order, drops repeats', () => expect(parseNamespaceKinds('mnt,pid,mnt')).toEqual(['mnt', 'pid']));
  test('targetRef', () => {
    expect(targetRef({ target: 'deploy/web' })).toEqual({ kind: 'deployment', name: 'web' });
    expect(targetRef({ selector: 'a=b' })).toEqual({ kind: 'selector', selector: 'a=b' });
  });
});
