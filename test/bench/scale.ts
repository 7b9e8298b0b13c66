// The scale section of `npm run bench`: the e2e cluster with 1,000 kwok nodes and 10,000 pods
// beside its real nodes (test/cluster/scale.sh), every agent pod there faked as test/scale does
// (its report published for it, ten of them not ready). Each cluster-wide view is timed against
// its goal and its API requests counted through the tests' counting proxy; a session to the real
// node is timed against the same session before the fake nodes existed.
import { fileURLToPath } from 'node:url';

import { execa } from 'execa';

import { startCountingProxy } from '../scale/helpers/counting-proxy.js';
import { fakeAgentReports, fakeNodeNames, markAgentsNotReady, SCALE_NAMESPACE } from '../scale/helpers/fleet.js';
import { run, timeCommand, type Row } from './run.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SCALE = `${ROOT}/test/cluster/scale.sh`;
const NODES = 1000;
const PODS = 10_000;
const RUNS = 10;
/** status exits so while some agents are not ready */
const DEGRADED = 76;

/** The number of API requests one run of argv makes, through the proxy. */
async function requestsOf(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const proxy = await startCountingProxy(env.KUBECONFIG);
  try {
    // not spawnSync: the proxy answers on this process's event loop
    await execa(argv[0]!, argv.slice(1), { stdio: 'ignore', reject: false, env: { ...env, KUBECONFIG: proxy.kubeconfig } });
    return proxy.requests.length;
  } finally {
    await proxy.close();
  }
}

export async function scaleRows(env: NodeJS.ProcessEnv, image: string, exec: NonNullable<Row['baseline']>): Promise<Row[]> {
  const kubectl = (...args: string[]) => ['kubectl', 'nsdebug', ...args];
  const session = kubectl('-n', 'demo', 'pod/busybox', '--', 'true');
  const without = { what: 'the same with no fake node', samples: timeCommand(session, RUNS * 3, env) };
  process.stderr.write(`bench: ${NODES} kwok nodes and ${PODS} pods beside the cluster\n`);
  run(['bash', SCALE, 'up', '--nodes', String(NODES), '--pods', String(PODS)], env);
  // the fleet helpers speak to the cluster through kubectl, which reads KUBECONFIG
  process.env.KUBECONFIG = env.KUBECONFIG;
  try {
    run(['kubectl', 'nsdebug', 'install', '--session-auth', '--image', image, '--timeout', '15m'], env);
    await fakeAgentReports();
    const fake = await fakeNodeNames();
    await markAgentsNotReady(fake.filter((_, i) => i % 100 === 7));
    const getNodes = { what: 'kubectl get nodes (the same nodes)', samples: timeCommand(['kubectl', 'get', 'nodes'], RUNS, env) };
    const getPods = {
      what: 'kubectl get pods -o name (the same pods)',
      samples: timeCommand(['kubectl', '-n', SCALE_NAMESPACE, 'get', 'pods', '-o', 'name'], RUNS, env),
    };
    const complete = (...words: string[]) => [`${ROOT}/bin/kubectl_complete-nsdebug`, '__complete', ...words];
    const views: Array<{ what: string; argv: string[]; goal: string; baseline: Row['baseline']; status?: number }> = [
      {
        what: `kubectl nsdebug status (${NODES} fake nodes + the real ones, 10 agents not ready)`,
        argv: kubectl('status'),
        goal: '≤ 2 s',
        baseline: getNodes,
        status: DEGRADED,
      },
      {
        what: `kubectl nsdebug status -o json (${NODES} fake nodes)`,
        argv: kubectl('status', '-o', 'json'),
        goal: '≤ 2 s',
        baseline: getNodes,
        status: DEGRADED,
      },
      {
        what: `completion of pod names (${PODS} pods in the namespace)`,
        argv: complete('-n', SCALE_NAMESPACE, ''),
        goal: '≤ 1 s',
        baseline: getPods,
      },
      { what: `completion of node/ (${NODES} fake nodes)`, argv: complete('node/'), goal: '≤ 1 s', baseline: getNodes },
      { what: 'completion of namespaces', argv: complete('-n', ''), goal: '≤ 1 s', baseline: exec },
      { what: `kubectl nsdebug sessions -A (${NODES} fake agents)`, argv: kubectl('sessions', '-A'), goal: '', baseline: exec },
    ];
    const rows: Row[] = [
      {
        what: `kubectl nsdebug pod/busybox -- true with ${NODES} fake nodes in the cluster`,
        samples: timeCommand(session, RUNS * 3, env),
        baseline: without,
        goal: 'no slower than with none',
      },
    ];
    for (const view of views)
      rows.push({
        what: view.what,
        samples: timeCommand(view.argv, RUNS, env, undefined, view.status),
        baseline: view.baseline,
        goal: view.goal,
      });
    for (const view of [{ what: 'a session (pod/busybox -- true)', argv: session }, ...views])
      rows.push({ what: `${view.what}: API requests`, unit: 'count', samples: [await requestsOf(view.argv, env)], goal: 'bounded' });
    return rows;
  } finally {
    run(['bash', SCALE, 'down'], env);
  }
}
