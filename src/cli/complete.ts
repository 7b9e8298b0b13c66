// Completion for `kubectl nsdebug <TAB>`. kubectl (>= 1.26) completes a plugin's arguments by
// running `kubectl_complete-nsdebug ARGS… WORD` (bin/) and reading cobra's protocol: one
// candidate per line, then ":DIRECTIVE". Subcommands and flags come from the oclif command
// table; targets, namespaces, contexts and containers from the cluster, as kubectl completes them.
import type { Command } from '@oclif/core';

import { NAMESPACE_KINDS } from '../contract.js';
import type { KubeConfigOptions } from '../kube/config.js';
import { kindNamed, type TargetRef } from '../pod.js';
import { DEFAULT_COMMAND_ID } from './default-command.js';
import { subcommandFirst } from './main.js';

/** cobra's ShellCompDirective values kubectl passes on to the shell. */
export const Directive = { DEFAULT: 0, NO_FILE: 4 } as const;

export interface Completion {
  candidates: string[];
  directive: number;
}

/** What completion may ask the cluster; every answer may be empty. */
export interface CompletionLookup {
  namespaces(): Promise<string[]>;
  contexts(): Promise<string[]>;
  names(kind: Exclude<TargetRef['kind'], 'selector'>, namespace?: string): Promise<string[]>;
  containers(pod: string, namespace?: string): Promise<string[]>;
  nodes(): Promise<string[]>;
}

type FlagShape = { type: string; char?: string; options?: readonly string[]; hidden?: boolean };
export type CommandTable = Record<string, Pick<Command.Class, 'flags' | 'args' | 'hidden'>>;

/** kubectl's spelling of each kind, as a completed target shows it (deploy/web). */
const KIND_PREFIX: Record<string, string> = {
  pod: 'pod',
  deployment: 'deploy',
  statefulset: 'statefulset',
  daemonset: 'daemonset',
  replicaset: 'replicaset',
  job: 'job',
  service: 'service',
};

/** node/NAME as kubectl spells a node. */
const NODE_PREFIXES = ['node', 'nodes', 'no'];

/**
 * At most this many candidates: on 10,000 pods the shell still gets a list it can show. The
 * cluster's names are filtered by the typed prefix first, so the cap only bites on a short prefix.
 */
export const MAX_CANDIDATES = 500;

const startingWith = (prefix: string, words: Iterable<string>) =>
  [...new Set(words)]
    .filter((w) => w.startsWith(prefix))
    .sort()
    .slice(0, MAX_CANDIDATES);

/** words: the arguments after `kubectl nsdebug`, the last being the word under the cursor. */
export async function complete(
  words: string[],
  commands: CommandTable,
  lookup: (flags: KubeConfigOptions) => CompletionLookup,
): Promise<Completion> {
  const word = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  // after `--` comes a command for the container: nothing we can know
  if (before.includes('--')) return { candidates: [], directive: Directive.DEFAULT };

  const isSubcommand = (w: string) => w !== DEFAULT_COMMAND_ID && w in commands;
  const ordered = subcommandFirst(before, isSubcommand);
  const subcommand = ordered[0] !== undefined && isSubcommand(ordered[0]) ? ordered[0] : undefined;
  const command = commands[subcommand ?? DEFAULT_COMMAND_ID];
  if (!command) return { candidates: [], directive: Directive.NO_FILE };
  const flags = Object.entries((command.flags ?? {}) as Record<string, FlagShape>).filter(([, f]) => !f.hidden);
  const flagNamed = (w: string) => flags.find(([name, f]) => w === `--${name}` || (f.char !== undefined && w === `-${f.char}`));

  // what is typed so far: flag values and positional words
  const values: Record<string, string> = {};
  const positionals: string[] = [];
  const rest = subcommand ? ordered.slice(1) : ordered;
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i]!;
    const eq = w.startsWith('--') ? w.indexOf('=') : -1;
    const flag = flagNamed(eq > 0 ? w.slice(0, eq) : w);
    if (flag && flag[1].type === 'option') {
      if (eq > 0) values[flag[0]] = w.slice(eq + 1);
      else if (i + 1 < rest.length) values[flag[0]] = rest[++i]!;
    } else if (!w.startsWith('-')) positionals.push(w);
  }
  const cluster = () =>
    lookup({
      ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
      ...(values.context ? { context: values.context } : {}),
      requestTimeout: '5s',
    });
  const namespace = values.namespace;

  // the value of the flag just typed
  const previous = flagNamed(before.at(-1) ?? '');
  if (previous && previous[1].type === 'option') {
    return completeValue(previous[0], previous[1], word, { cluster, namespace, target: positionals[0] });
  }
  if (word.startsWith('--') && word.includes('=')) {
    const flag = flagNamed(word.slice(0, word.indexOf('=')));
    if (flag && flag[1].type === 'option') {
      const name = word.slice(0, word.indexOf('=') + 1);
      const inner = await completeValue(flag[0], flag[1], word.slice(name.length), { cluster, namespace, target: positionals[0] });
      return { ...inner, candidates: inner.candidates.map((c) => name + c) };
    }
  }
  if (word.startsWith('-')) {
    const names = flags.flatMap(([name, f]) => [`--${name}`, ...(f.char ? [`-${f.char}`] : [])]);
    return { candidates: startingWith(word, names), directive: Directive.NO_FILE };
  }
  // the target: pods by name (as kubectl exec completes them), TYPE/NAME for workloads
  const takesTarget = 'target' in (command.args ?? {});
  if (!takesTarget || positionals.length > 0) return { candidates: [], directive: Directive.NO_FILE };
  const candidates: string[] = [];
  const slash = word.indexOf('/');
  const nodes = !subcommand; // node/NAME is a session target only
  if (slash >= 0) {
    const type = word.slice(0, slash);
    const kind = kindNamed(type);
    if (kind && kind !== 'selector') candidates.push(...(await cluster().names(kind, namespace)).map((n) => `${type}/${n}`));
    else if (nodes && NODE_PREFIXES.includes(type)) candidates.push(...(await cluster().nodes()).map((n) => `${type}/${n}`));
  } else {
    if (!subcommand)
      candidates.push(
        ...Object.entries(commands)
          .filter(([id, c]) => isSubcommand(id) && !c.hidden)
          .map(([id]) => id),
      );
    candidates.push(...(await cluster().names('pod', namespace)));
    candidates.push(...Object.values(KIND_PREFIX).map((k) => `${k}/`), ...(nodes ? ['node/'] : []));
  }
  return { candidates: startingWith(word, candidates), directive: Directive.NO_FILE };
}

async function completeValue(
  name: string,
  flag: FlagShape,
  word: string,
  at: { cluster: () => CompletionLookup; namespace: string | undefined; target: string | undefined },
): Promise<Completion> {
  const done = (candidates: string[]) => ({ candidates: startingWith(word, candidates), directive: Directive.NO_FILE });
  if (flag.options) return done([...flag.options]);
  switch (name) {
    case 'kubeconfig':
      return { candidates: [], directive: Directive.DEFAULT };
    case 'namespace':
    case 'agent-namespace':
      return done(await at.cluster().namespaces());
    case 'context':
      return done(await at.cluster().contexts());
    case 'container': {
      const slash = at.target?.indexOf('/') ?? -1;
      const pod = at.target && (slash < 0 ? at.target : kindNamed(at.target.slice(0, slash)) === 'pod' ? at.target.slice(slash + 1) : '');
      return done(pod ? await at.cluster().containers(pod, at.namespace) : []);
    }
    case 'ns': {
      // a comma-separated list: complete its last item, keep the ones typed
      const head = word.slice(0, word.lastIndexOf(',') + 1);
      const typed = new Set(head.split(',').filter(Boolean));
      return done(NAMESPACE_KINDS.filter((k) => !typed.has(k)).map((k) => head + k));
    }
    default:
      return done([]);
  }
}

/**
 * The cluster behind completion, quiet on every failure (no candidates). Lists ask for names only
 * (src/kube/name-list.ts): one small call from the API server's cache however many objects.
 */
export function clusterLookup(flags: KubeConfigOptions): CompletionLookup {
  const connection = (async () => {
    const [{ loadKubeConfig, apiClients }, { listNames }] = await Promise.all([
      import('../kube/config.js'),
      import('../kube/name-list.js'),
    ]);
    const conn = await loadKubeConfig(flags);
    return { conn, listNames: (path: string) => listNames(conn, path), api: () => apiClients(conn) };
  })();
  const quietly = async (fn: (c: Awaited<typeof connection>) => Promise<string[]>) => {
    try {
      return await fn(await connection);
    } catch {
      return [];
    }
  };
  return {
    namespaces: () => quietly(({ listNames }) => listNames('/api/v1/namespaces')),
    contexts: () => quietly(async ({ conn }) => conn.kc.getContexts().map((c) => c.name)),
    nodes: () => quietly(({ listNames }) => listNames('/api/v1/nodes')),
    names: (kind, ns) =>
      quietly(async ({ conn, listNames }) => {
        const path = COLLECTION_PATHS[kind];
        return path ? listNames(path(encodeURIComponent(ns ?? conn.namespace))) : [];
      }),
    containers: (pod, ns) =>
      quietly(async ({ conn, api }) => {
        const p = await (await api()).core.readNamespacedPod({ name: pod, namespace: ns ?? conn.namespace });
        return [...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? []), ...(p.spec?.ephemeralContainers ?? [])].map(
          (c) => c.name,
        );
      }),
  };
}

/** Where each kind completion offers lives in the API, per namespace. */
const COLLECTION_PATHS: Partial<Record<TargetRef['kind'], (namespace: string) => string>> = {
  pod: (ns) => `/api/v1/namespaces/${ns}/pods`,
  service: (ns) => `/api/v1/namespaces/${ns}/services`,
  deployment: (ns) => `/apis/apps/v1/namespaces/${ns}/deployments`,
  statefulset: (ns) => `/apis/apps/v1/namespaces/${ns}/statefulsets`,
  daemonset: (ns) => `/apis/apps/v1/namespaces/${ns}/daemonsets`,
  replicaset: (ns) => `/apis/apps/v1/namespaces/${ns}/replicasets`,
  job: (ns) => `/apis/batch/v1/namespaces/${ns}/jobs`,
};

/** bin/kubectl_complete-nsdebug: print the completion of argv in cobra's protocol. */
export async function printCompletion(argv: string[]): Promise<void> {
  const { default: commands } = await import('./commands.js');
  const words = argv[0] === '__complete' ? argv.slice(1) : argv;
  let result: Completion = { candidates: [], directive: Directive.NO_FILE };
  try {
    result = await complete(words.length ? words : [''], commands, clusterLookup);
  } catch {
    // completion never prints an error into the user's command line
  }
  process.stdout.write([...result.candidates, `:${result.directive}`, ''].join('\n'));
}
