// `kubectl nsdebug TARGET [-- COMMAND…]`, the default command: no subcommand word is needed
// (src/cli/default-command.ts routes every argv that names no subcommand here).
import { Args, Command, Flags } from '@oclif/core';

import { kubeFlags, targetFlags } from '../src/cli/flags.js';
import { splitCommand } from '../src/cli/options.js';

export default class Debug extends Command {
  static hidden = true; // listed by the root help as the default usage, not as a command named ""
  static summary = "A shell, or any command, inside a running container's own namespaces, even when the container has no shell.";
  static description = `Runs through the nsdebug agent on the target's node, reached by exec through the API server (RBAC and audit apply): nothing is added to the target pod, nothing is pulled, nothing is left behind.

TARGET is pod/NAME (or just NAME), deploy/NAME, statefulset/NAME, daemonset/NAME, replicaset/NAME, job/NAME or service/NAME; a workload resolves to its most available pod, as kubectl exec picks it. The container is -c, else the kubectl.kubernetes.io/default-container annotation, else the first.

Without a command: an interactive shell (the container's own, or nsdebug's busybox when it has none), with a TTY when stdin is a terminal. With -- COMMAND: that command, stdin attached only with -i.

A container that is not running (CrashLoopBackOff, Error, OOMKilled, Completed) opens a post-mortem session on its last instance's filesystem, read-only, in the pod's network, after its exit code, termination message and last log lines; --wait instead catches its next start. node/NAME opens a shell in the node's own namespaces.

The session runs confined like the process it enters, as kubectl exec would run it: that process's UID, GID and groups, its capability sets, no_new_privs, seccomp filter and LSM label, read from the process itself. --user picks another user inside the container (never with more capabilities than the container's bounding set); --privileged keeps the agent's full privileges on the node instead (root, every capability, no seccomp), audited and never with --session-auth.

With --session-auth (clusters installed with \`kubectl nsdebug install --session-auth\`), the session is asked for by a DebugSession object in the target's namespace, which RBAC lets you create there or not, and reaches the agent by port-forward: no exec right on the agent is needed.

EXIT STATUS: the remote command's exit code, like kubectl exec. nsdebug's own failures use 64 usage, 65 not found, 66 forbidden, 67 agent unavailable, 68 CLI/agent contract mismatch, 69 entering the namespaces failed, 70 container not running, 71 API server unreachable or timed out, 72 internal error; 126/127 the command could not be run / was not found in the container.`;
  static usage = [
    'TARGET [-c CONTAINER] [-n NS] [--ns LIST] [--tools] [-i] [-t] [--user UID[:GID] | --privileged] [--session-auth] [-- COMMAND [ARGS...]]',
    '-l SELECTOR [flags] [-- COMMAND [ARGS...]]',
    'node/NAME [-- COMMAND [ARGS...]]',
    'ps TARGET [-c CONTAINER] [-o table|json]',
    'ns TARGET [-o table|json]',
    'cp TARGET:PATH LOCAL | cp LOCAL TARGET:PATH [-c CONTAINER]',
  ];
  static examples = [
    { description: "A shell in the default container of pod web-0 in the context's namespace", command: 'kubectl nsdebug pod/web-0' },
    {
      description: "One command in container app of a deployment's pod; its exit code is nsdebug's",
      command: "kubectl nsdebug -n shop deploy/checkout -c app -- sh -c 'ls -l /proc/1/root'",
    },
    {
      description: "A distroless container: nsdebug's busybox runs with / being the container's root",
      command: 'kubectl nsdebug pod/api-7d9c --tools -- ls /',
    },
    {
      description: "Only the container's network namespace, with your input piped in",
      command: 'kubectl nsdebug pod/web-0 --ns net -i -- cat > /dev/null < big.bin',
    },
    {
      description: 'A crashed container: a post-mortem shell on its last filesystem, as the crash left it',
      command: 'kubectl nsdebug pod/api-7d9c',
    },
    {
      description: "A crash-looping container's next start, caught alive",
      command: 'kubectl nsdebug pod/api-7d9c --wait -- cat /proc/1/environ',
    },
    { description: 'Observe a running container without changing a byte', command: 'kubectl nsdebug pod/web-0 --read-only' },
    {
      description: 'The namespaces of PID 13 inside the container (see ps), even a nested PID namespace',
      command: 'kubectl nsdebug pod/web-0 --process 13',
    },
    {
      description: "strace a process of a capability-less pod: the agent's privileges, audited (admins only)",
      command: 'kubectl nsdebug pod/web-0 --privileged --tools -- strace -p 1',
    },
    {
      description: 'A shell as root inside a pod that runs as UID 1000 (still only its capabilities)',
      command: 'kubectl nsdebug pod/web-0 --user 0',
    },
    { description: "A shell in node worker-3's own namespaces", command: 'kubectl nsdebug node/worker-3' },
    {
      description: 'Where you may debug only the pods of your own namespaces (session authorization)',
      command: 'kubectl nsdebug -n team-a pod/web-0 --session-auth',
    },
    {
      description: 'The processes of the pod picked by a label selector, host PID next to container PID',
      command: 'kubectl nsdebug ps -l app=web',
    },
  ];
  static strict = true;
  static args = {
    target: Args.string({
      description: 'pod/NAME (or NAME), deploy/NAME, statefulset/NAME, daemonset/NAME, replicaset/NAME, job/NAME, service/NAME',
    }),
  };
  static flags = {
    ...targetFlags,
    ns: Flags.string({
      summary: 'namespaces to join, comma-separated: user,cgroup,ipc,uts,net,pid,mnt,time (default: all the container has)',
      helpValue: 'LIST',
    }),
    tools: Flags.boolean({
      summary: "run nsdebug's static busybox instead of the container's shell: ls, ps, wget… with / being the container's root",
    }),
    stdin: Flags.boolean({ char: 'i', summary: 'pass stdin to the command (default: on for a shell, off for a command)', allowNo: true }),
    tty: Flags.boolean({ char: 't', summary: 'allocate a TTY (default: on for a shell when stdin is a terminal)', allowNo: true }),
    quiet: Flags.boolean({ char: 'q', summary: 'no notes on stderr ("Defaulted container…", which pod was picked)' }),
    'read-only': Flags.boolean({
      summary: "observe without changing a byte: a private, read-only copy of the container's mounts, and no new privileges",
    }),
    process: Flags.string({
      summary: 'enter the namespaces of this process (its PID inside the container, e.g. from `ps`), even a nested PID namespace',
      helpValue: 'PID',
    }),
    user: Flags.string({
      summary:
        "run as this user inside the container (GID defaults to UID), never with more capabilities than the container's bounding set",
      helpValue: 'UID[:GID]',
    }),
    privileged: Flags.boolean({
      exclusive: ['user'],
      summary:
        "keep the agent's full privileges on the node (root, every capability, no seccomp) instead of the container's confinement; audited",
    }),
    wait: Flags.boolean({
      summary: "wait for the container's next start and enter it as soon as its process runs: catches a crash-looping container alive",
    }),
    timeout: Flags.string({
      dependsOn: ['wait'],
      summary: 'with --wait: how long to wait, e.g. 30s, 10m (default 5m)',
      helpValue: 'DURATION',
    }),
    ...kubeFlags,
  };

  async run(): Promise<number> {
    const { flags: argv, command } = splitCommand(this.argv);
    const { args, flags } = await this.parse(Debug, argv);
    const { runDebug } = await import('../src/cli/debug.js');
    return runDebug({ ...flags, ...(args.target !== undefined ? { target: args.target } : {}), command });
  }
}
