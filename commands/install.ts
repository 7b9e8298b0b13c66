// `kubectl nsdebug install`: the agent on every node, from deploy/ (src/cli/install.ts runs it).
import { Command, Flags } from '@oclif/core';

import { agentNamespaceFlag, connectionFlags } from '../src/cli/flags.js';

export default class Install extends Command {
  static summary = 'Install the nsdebug agent on every node of the cluster.';

  static description = `Server-side applies the objects of deploy/ shipped with this plugin (the same ones \`kubectl apply -k deploy/\` applies): the namespace nsdebug-system (PodSecurity privileged), the agent DaemonSet (hostPID, privileged, on every node) and the nsdebug-user roles. Then waits until the agent is ready on every node, with per-node progress on a terminal. An agent that cannot start (image pull failure, crash loop) is reported with its node and reason.

With --session-auth it also applies deploy/session-auth/: the DebugSession resource, the admission policy that pins its requester, and the roles for users who may debug pods only in namespaces where they may create DebugSessions, without exec on the agent (\`kubectl nsdebug TARGET --session-auth\`).

With --record, the agents record sessions: a TTY session as asciicast v2 (its output, window size changes, and with --record-input what is typed), one without a TTY as its argv, byte counts and exit code; every session, or with --record-scope labelled only those into namespaces labelled nsdebug.io/record=true. Recordings go to a directory on each node (--record hostpath, below --record-dir, the oldest removed beyond --record-max-size) or to the agents' logs as JSON lines (--record log). The user is told on stderr that the session is recorded; \`kubectl nsdebug replay\` plays a recording back.

Needs cluster-admin. Exec into an agent pod is root on its node: bind nsdebug-user only to whom you would make cluster-admin.`;

  static examples = [
    '<%= config.bin %> install',
    '<%= config.bin %> install --image registry.example/nsdebug-agent:0.1.0',
    '<%= config.bin %> install --dry-run',
    '<%= config.bin %> install --session-auth',
    '<%= config.bin %> install --no-wait',
    '<%= config.bin %> install --record hostpath --record-max-size 5Gi',
    '<%= config.bin %> install --record log --record-scope labelled',
  ];

  static flags = {
    image: Flags.string({ summary: 'the agent image [default: the one in deploy/]', helpValue: 'IMAGE' }),
    namespace: agentNamespaceFlag('namespace for the agent (created, labelled PodSecurity privileged)'),
    'session-auth': Flags.boolean({
      summary: 'also install session authorization (DebugSession, its admission policy and roles; see the README)',
    }),
    record: Flags.string({
      summary: "record sessions: to a directory on each node, or to the agents' logs",
      options: ['off', 'hostpath', 'log'],
      default: 'off',
    }),
    'record-dir': Flags.string({
      summary: "the nodes' directory for recordings",
      helpValue: 'PATH',
      default: '/var/log/nsdebug/recordings',
      dependsOn: ['record'],
    }),
    'record-max-size': Flags.string({
      summary: 'the most the recordings may take on a node; the oldest go first',
      helpValue: 'SIZE',
      default: '1Gi',
      dependsOn: ['record'],
    }),
    'record-input': Flags.boolean({ summary: 'record what is typed, too (passwords typed at a prompt included)', dependsOn: ['record'] }),
    'record-scope': Flags.string({
      summary: 'which sessions: all, or those into namespaces labelled nsdebug.io/record=true',
      options: ['all', 'labelled'],
      default: 'all',
      dependsOn: ['record'],
    }),
    'dry-run': Flags.boolean({ summary: 'let the API server check every object without storing it' }),
    wait: Flags.boolean({ summary: 'wait until the agent is ready on every node', default: true, allowNo: true }),
    timeout: Flags.string({ helpValue: 'DURATION', summary: 'how long to wait, e.g. 90s, 5m', default: '2m' }),
    ...connectionFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Install);
    const { runInstall } = await import('../src/cli/install.js');
    await runInstall(flags);
  }
}
