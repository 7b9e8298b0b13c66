// Completion over the real oclif commands; the cluster answers from a fixed inventory.
import Index from '../../../commands/index.js';
import Cp from '../../../commands/cp.js';
import Install from '../../../commands/install.js';
import Ns from '../../../commands/ns.js';
import Ps from '../../../commands/ps.js';
import Status from '../../../commands/status.js';
import Uninstall from '../../../commands/uninstall.js';
import { complete, Directive, MAX_CANDIDATES, type CompletionLookup } from '../../../src/cli/complete.js';
import { DEFAULT_COMMAND_ID } from '../../../src/cli/default-command.js';
import type { KubeConfigOptions } from '../../../src/kube/config.js';
import { namesOfTable } from '../../../src/kube/name-list.js';

const inventory: Record<string, Record<string, string[]>> = {
  demo: { pod: ['busybox', 'multi', 'web-1'], deployment: ['web'] },
  default: { pod: ['nginx'] },
};
const asked: KubeConfigOptions[] = [];
const fakeCluster = (flags: KubeConfigOptions): CompletionLookup => {
  asked.push(flags);
  return {
    namespaces: async () => Object.keys(inventory),
    contexts: async () => ['prod', 'staging'],
    names: async (kind, ns = 'default') => inventory[ns]?.[kind] ?? [],
    containers: async (pod) => (pod === 'multi' ? ['sidecar', 'app'] : []),
    nodes: async () => ['worker-1', 'worker-2'],
  };
};
// src/cli/commands.ts lists dist/commands/*.js; the same table from the sources
const commands = { [DEFAULT_COMMAND_ID]: Index, cp: Cp, install: Install, ns: Ns, ps: Ps, status: Status, uninstall: Uninstall };
const run = (line: string) => complete(line.split(' '), commands, fakeCluster);

describe('kubectl nsdebug <TAB>', () => {
  test.each([
    [
      '',
      [
        'cp',
        'daemonset/',
        'deploy/',
        'install',
        'job/',
        'nginx',
        'node/',
        'ns',
        'pod/',
        'ps',
        'replicaset/',
        'service/',
        'statefulset/',
        'status',
        'uninstall',
      ],
    ],
    [
      '-n demo ',
      [
        'busybox',
        'cp',
        'daemonset/',
        'deploy/',
        'install',
        'job/',
        'multi',
        'node/',
        'ns',
        'pod/',
        'ps',
        'replicaset/',
        'service/',
        'statefulset/',
        'status',
        'uninstall',
        'web-1',
      ],
    ],
    ['-n demo w', ['web-1']],
    ['-n demo deploy/', ['deploy/web']],
    ['--namespace=demo po/m', ['po/multi']],
    ['-n demo ps ', ['busybox', 'daemonset/', 'deploy/', 'job/', 'multi', 'pod/', 'replicaset/', 'service/', 'statefulset/', 'web-1']],
    ['-n ', ['default', 'demo']],
    ['--namespace=d', ['--namespace=default', '--namespace=demo']],
    ['--context ', ['prod', 'staging']],
    ['-n demo pod/multi -c ', ['app', 'sidecar']],
    ['-n demo multi -c s', ['sidecar']],
    ['-n demo deploy/web -c ', []],
    ['--ns pid,m', ['pid,mnt']],
    ['ps -o ', ['json', 'table']],
    ['--na', ['--namespace']],
    ['ps --o', ['--output']],
    ['-n demo busybox ', []],
    ['node/', ['node/worker-1', 'node/worker-2']],
    ['no/worker-2', ['no/worker-2']],
    ['ps node/', []],
    ['ns -n demo m', ['multi']],
  ])('%j → %j', async (line, expected) => {
    expect(await run(line)).toEqual({ candidates: expected, directive: Directive.NO_FILE });
  });

  test('after -- the container command is not ours; --kubeconfig completes file names', async () => {
    expect(await run('pod/x -- l')).toEqual({ candidates: [], directive: Directive.DEFAULT });
    expect(await run('--kubeconfig ')).toEqual({ candidates: [], directive: Directive.DEFAULT });
  });

  test('the cluster is asked with the kubeconfig and context typed on the line', async () => {
    asked.length = 0;
    await run('--kubeconfig /tmp/kc --context staging -n demo ');
    expect(asked).toContainEqual({ kubeconfig: '/tmp/kc', context: 'staging', requestTimeout: '5s' });
  });
});

describe('at cluster scale', () => {
  const pods = Array.from({ length: 10_000 }, (_, i) => `load-${String(i).padStart(5, '0')}`);
  const big = (): CompletionLookup => ({
    namespaces: async () => [],
    contexts: async () => [],
    names: async () => pods,
    containers: async () => [],
    nodes: async () => pods.slice(0, 1000).map((p) => p.replace('load', 'kwok')),
  });
  test(`10,000 pods: at most ${MAX_CANDIDATES} candidates, and a prefix still finds the last of them`, async () => {
    const all = await complete(['-n', 'load', ''], commands, big);
    expect(all.candidates).toHaveLength(MAX_CANDIDATES);
    expect((await complete(['-n', 'load', 'load-0999'], commands, big)).candidates).toEqual(
      Array.from({ length: 10 }, (_, i) => `load-0999${i}`),
    );
    expect((await complete(['node/kwok-00999'], commands, big)).candidates).toEqual(['node/kwok-00999']);
  });
});

describe("the API server's Table of names", () => {
  test('the Name column, whatever its place; anything else is no names', () => {
    const table = {
      kind: 'Table',
      columnDefinitions: [{ name: 'Status' }, { name: 'Name' }],
      rows: [{ cells: ['Running', 'a'] }, { cells: ['Pending', 'b'] }, { cells: ['x', 7] }],
    };
    expect(namesOfTable(table)).toEqual(['a', 'b']);
    expect(namesOfTable({ kind: 'PodList', items: [] })).toEqual([]);
    expect(namesOfTable(null)).toEqual([]);
  });
});
