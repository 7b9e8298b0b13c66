// Flags shared by the commands, spelled as kubectl spells them. Commands spread these into their
// static `flags`; each command's own flags stay in its file.
import { Flags } from '@oclif/core';

import { DEFAULT_AGENT_NAMESPACE } from './options.js';

/** kubectl's global flags: which cluster, as whom, which namespace. */
export const kubeFlags = {
  namespace: Flags.string({
    char: 'n',
    summary: 'namespace of the target (default: the context\'s, else "default")',
    helpValue: 'NS',
    helpGroup: 'KUBERNETES',
  }),
  context: Flags.string({
    summary: 'kubeconfig context to use (default: its current-context)',
    helpValue: 'NAME',
    helpGroup: 'KUBERNETES',
  }),
  kubeconfig: Flags.string({
    summary: 'kubeconfig file to use (default: $KUBECONFIG, else ~/.kube/config)',
    helpValue: 'PATH',
    helpGroup: 'KUBERNETES',
  }),
  'request-timeout': Flags.string({
    summary: 'give up on an API request or on opening the stream after this long: 30s, 2m; 0 = never (default 30s)',
    helpValue: 'DURATION',
    helpGroup: 'KUBERNETES',
  }),
  debug: Flags.boolean({ summary: 'show stack traces of internal errors', helpGroup: 'GLOBAL' }),
};

// install, uninstall and status: -n/--namespace there is the agent's namespace, not a target's
const { namespace: _targetNamespace, ...connectionFlags } = kubeFlags;
/** kubectl's global flags but -n: which cluster, as whom. */
export { connectionFlags };

/** -n/--namespace of install, uninstall and status: the agent's namespace. */
export const agentNamespaceFlag = (summary: string) =>
  Flags.string({ char: 'n', helpValue: 'NS', summary, default: DEFAULT_AGENT_NAMESPACE });

/** Which container: the target is the command's argument; these refine it. */
export const targetFlags = {
  container: Flags.string({
    char: 'c',
    summary: 'container name (default: the kubectl.kubernetes.io/default-container annotation, else the first)',
    helpValue: 'NAME',
  }),
  selector: Flags.string({
    char: 'l',
    summary: 'pick a pod by label selector instead of naming a target, e.g. -l app=web',
    helpValue: 'SELECTOR',
  }),
  'agent-namespace': Flags.string({ summary: 'namespace the nsdebug agent runs in', default: DEFAULT_AGENT_NAMESPACE, helpValue: 'NS' }),
  'session-auth': Flags.boolean({
    summary:
      "authorize by a DebugSession in the target's namespace instead of exec into the agent (clusters installed with --session-auth) [env: NSDEBUG_SESSION_AUTH=1]",
  }),
};
