// nsdebug's cluster-wide views on a cluster of hundreds of nodes (test/scale/run.sh: the e2e
// cluster's real nodes plus NSDEBUG_SCALE_NODES kwok nodes, NSDEBUG_SCALE_PODS pods): each view
// costs a bounded number of API requests, counted by a proxy in front of the API server, and
// shows what the API server itself says (kubectl is the oracle). No time is asserted here: the
// bench measures the same views on 1,000 nodes against their goals.
import { execa } from 'execa';

import { MAX_CANDIDATES } from '../../src/cli/complete.js';
import { clusterEnv, kubectl, kubectlJson, waitFor } from '../e2e/helpers/kube.js';
import { HOST_NODE } from '../e2e/helpers/node.js';
import { describeRequests, startCountingProxy, type Counted, type CountingProxy } from './helpers/counting-proxy.js';
import { AGENT_NAMESPACE, fakeAgentReports, fakeNodeNames, markAgentsNotReady, ROOT, SCALE_NAMESPACE } from './helpers/fleet.js';

clusterEnv();
const IMAGE = process.env.NSDEBUG_AGENT_IMAGE ?? 'nsdebug.local/agent:dev';
const FAKE = Number(process.env.NSDEBUG_SCALE_NODES ?? 200);
const text = (v: unknown) => String(v ?? '');
const lines = (v: unknown) => text(v).split('\n').filter(Boolean);

let proxy: CountingProxy;
let allNodes: string[];
let fake: string[];
/** the fake nodes whose agents the suite makes not ready */
let notReady: string[];

/** kubectl nsdebug ARGS through the counting proxy: its result and the requests it made. */
async function counted(args: string[], opts: { bin?: string } = {}) {
  proxy.take();
  const r = await execa(opts.bin ?? 'kubectl', opts.bin ? args : ['nsdebug', ...args], {
    reject: false,
    timeout: 300_000,
    env: { KUBECONFIG: proxy.kubeconfig, PATH: `${ROOT}/bin:${process.env.PATH}` },
  });
  return { ...r, requests: proxy.take() };
}

const lists = (rs: Counted[], path: RegExp) => rs.filter((r) => r.method === 'GET' && path.test(r.path));

beforeAll(async () => {
  proxy = await startCountingProxy();
  fake = await fakeNodeNames();
  if (fake.length < FAKE)
    throw new Error(`${fake.length} fake nodes, not ${FAKE}: test/scale/run.sh makes them (test/cluster/scale.sh up)`);
  allNodes = (await kubectlJson<{ items: Array<{ metadata: { name: string } }> }>(['get', 'nodes'])).items
    .map((n) => n.metadata.name)
    .sort();
  const install = await kubectl(['nsdebug', 'install', '--image', IMAGE, '--timeout', '10m'], { timeout: 700_000 });
  if (install.exitCode !== 0) throw new Error(`kubectl nsdebug install on ${allNodes.length} nodes: ${text(install.stderr)}`);
  await fakeAgentReports();
  notReady = [fake[6]!, fake[17]!, fake[42]!, fake[99]!, fake[150]!];
  await markAgentsNotReady(notReady);
}, 900_000);

afterAll(async () => {
  await proxy?.close();
});

describe(`status on ${FAKE} fake nodes and the real ones`, () => {
  test('a summary of counts, the not-ready agents listed, exit 76 (degraded); four lists and two reads, nothing per node', async () => {
    const r = await counted(['status']);
    expect(r.exitCode).toBe(76);
    const out = lines(r.stdout);
    expect(out[0]).toBe(
      `nodes: ${allNodes.length}; ready to host a session: ${allNodes.length - notReady.length}; not: ${notReady.length} not ready: running, not ready (readiness check pending)`,
    );
    expect(out).toContainEqual(expect.stringMatching(/^runtimes: containerd 2\.1\.4 on \d+, containerd 1\.7\.27 on \d+/));
    // every fake node reports v2/systemd; so may the real ones (the e2e cluster's VM nodes do, its host node does not)
    const v2 = Number(/^cgroups: (?:.*, )?v2\/systemd on (\d+)/.exec(out.find((l) => l.startsWith('cgroups: ')) ?? '')?.[1]);
    expect(v2).toBeGreaterThanOrEqual(FAKE);
    expect(v2).toBeLessThanOrEqual(FAKE + allNodes.length - fake.length);
    expect(out).toContain(`cannot host a session (${notReady.length}):`);
    for (const node of notReady) expect(out).toContainEqual(expect.stringMatching(new RegExp(`^${node} +nsdebug-agent-\\w+ +not ready: `)));
    expect(text(r.stderr)).toBe(
      `error: degraded: ${notReady.length} of ${allNodes.length} node(s) cannot host a session now (the other ${allNodes.length - notReady.length} can): see the list above`,
    );
    const pages = Math.ceil(allNodes.length / 500);
    expect(describeRequests(lists(r.requests, /^\/api\/v1\/nodes$/))).toHaveLength(pages);
    expect(lists(r.requests, /^\/api\/v1\/namespaces\/nsdebug-system\/pods$/)).toHaveLength(pages);
    expect(lists(r.requests, /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/nsdebug-system\/leases$/)).toHaveLength(pages);
    // the rest: session authorization's discovery and its policy binding; no exec, no per-node read
    expect(r.requests.filter((q) => q.upgrade)).toEqual([]);
    expect(r.requests.length).toBeLessThanOrEqual(3 * pages + 2);
  }, 120_000);

  test('-o wide: a row per node; -o json: every node, the not-ready ones as kubectl shows them', async () => {
    const wide = await counted(['status', '-o', 'wide']);
    expect(wide.exitCode).toBe(76);
    const rows = lines(wide.stdout).filter((l) => !l.startsWith('session authorization'));
    expect(rows[0]).toMatch(/^NODE +AGENT POD +READY +VERSION +CONTRACT +RUNTIME +CGROUP +KERNEL +PROBLEMS$/);
    expect(rows.slice(1).map((l) => l.split(/ +/)[0])).toEqual(allNodes);
    const json = await counted(['status', '-o', 'json']);
    const report = JSON.parse(text(json.stdout)) as { nodes: Array<{ node: string; hostsSessions: boolean }> };
    expect(report.nodes.map((n) => n.node)).toEqual(allNodes);
    expect(report.nodes.filter((n) => !n.hostsSessions).map((n) => n.node)).toEqual([...notReady].sort());
    // kubectl's own view of those agent pods
    for (const node of notReady) {
      const pods = await kubectlJson<{ items: Array<{ status: { conditions: Array<{ type: string; status: string }> } }> }>([
        '-n',
        AGENT_NAMESPACE,
        'get',
        'pods',
        '--field-selector',
        `spec.nodeName=${node}`,
      ]);
      expect(pods.items[0]?.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('False');
    }
  }, 120_000);
});

describe('a session while the fake nodes exist', () => {
  test('to a pod on the real node: the agent found by one field-selected list, no list of nodes or of every agent', async () => {
    const r = await counted(['-n', 'demo', 'pod/busybox', '--', 'cat', '/etc/hostname']);
    expect([r.exitCode, text(r.stderr)]).toEqual([0, '']);
    expect(text(r.stdout)).toBe(text((await kubectl(['-n', 'demo', 'exec', 'busybox', '--', 'cat', '/etc/hostname'])).stdout));
    const agentLookups = lists(r.requests, /^\/api\/v1\/namespaces\/nsdebug-system\/pods$/);
    expect(agentLookups.map((q) => q.query.get('fieldSelector'))).toEqual([`spec.nodeName=${HOST_NODE}`]);
    // the target's node is read (is it Ready, Linux?), never the list of them
    expect(describeRequests(lists(r.requests, /^\/api\/v1\/nodes/))).toEqual([`GET /api/v1/nodes/${HOST_NODE}`]);
    expect(describeRequests(r.requests).length).toBeLessThanOrEqual(6);
  }, 120_000);
});

describe('completion with hundreds of nodes and thousands of pods', () => {
  const complete = (...words: string[]) => counted(['__complete', ...words], { bin: `${ROOT}/bin/kubectl_complete-nsdebug` });
  const candidates = (stdout: unknown) => lines(stdout).filter((l) => !l.startsWith(':'));

  test(`pods: at most ${MAX_CANDIDATES}, one request; a prefix finds exactly the pods kubectl lists`, async () => {
    const pods = (await kubectlJson<{ items: Array<{ metadata: { name: string } }> }>(['-n', SCALE_NAMESPACE, 'get', 'pods'])).items
      .map((p) => p.metadata.name)
      .sort();
    expect(pods.length).toBeGreaterThan(MAX_CANDIDATES);
    const all = await complete('-n', SCALE_NAMESPACE, '');
    expect(all.requests).toHaveLength(1);
    const offered = candidates(all.stdout);
    // the subcommands and kinds (cp, deploy/…) are candidates too
    expect(offered).toHaveLength(MAX_CANDIDATES);
    expect(offered.filter((c) => c.startsWith('load-')).length).toBeGreaterThan(MAX_CANDIDATES - 20);
    const last = pods.at(-1)!;
    const prefix = last.slice(0, -1);
    const some = await complete('-n', SCALE_NAMESPACE, prefix);
    expect(candidates(some.stdout)).toEqual(pods.filter((p) => p.startsWith(prefix)));
    expect(some.requests.map((q) => q.query.get('includeObject'))).toEqual(['None']);
  }, 120_000);

  test('node/: the nodes kubectl lists, one request', async () => {
    const prefix = fake[FAKE - 1]!.slice(0, -1);
    const r = await complete(`node/${prefix}`);
    expect(candidates(r.stdout)).toEqual(allNodes.filter((n) => n.startsWith(prefix)).map((n) => `node/${n}`));
    expect(describeRequests(r.requests)).toHaveLength(1);
  }, 60_000);

  test('-n: the namespaces, one request', async () => {
    const r = await complete('-n', 'nsdebug-sc');
    expect(candidates(r.stdout)).toEqual([SCALE_NAMESPACE]);
    expect(r.requests).toHaveLength(1);
  }, 60_000);
});

describe('sessions -A on hundreds of nodes', () => {
  test('a running session listed by one list call, whatever the number of agents', async () => {
    const cli = execa('kubectl', ['nsdebug', '-n', 'demo', 'pod/busybox', '--', 'sleep', '3597'], { reject: false });
    try {
      const listed = await waitFor(
        'the session listed',
        async () => {
          const r = await counted(['sessions', '-A', '-o', 'json']);
          const found = (JSON.parse(text(r.stdout) || '[]') as Array<{ id: string; command: string[] }>).find(
            (s) => s.command.join(' ') === 'sleep 3597',
          );
          return found ? { found, requests: r.requests } : undefined;
        },
        60_000,
      );
      expect(describeRequests(listed.requests)).toEqual([
        expect.stringMatching(/^GET \/apis\/coordination\.k8s\.io\/v1\/namespaces\/nsdebug-system\/leases\?/),
      ]);
      expect((await kubectl(['nsdebug', 'sessions', 'kill', listed.found.id])).exitCode).toBe(0);
    } finally {
      cli.kill();
      await cli;
    }
  }, 120_000);
});

describe('install and uninstall with some agents not ready', () => {
  test('install again: the wait ends degraded (exit 76), counts and the not-ready nodes named; bounded calls a poll', async () => {
    const r = await counted(['install', '--image', IMAGE, '--timeout', '15s']);
    expect(r.exitCode).toBe(76);
    const error = lines(r.stderr).at(-1) ?? '';
    expect(error).toMatch(
      new RegExp(
        `^error: the agent is ready on ${allNodes.length - notReady.length} of ${allNodes.length} node\\(s\\) after 15s; not ready: ${notReady.length} running, not ready.* \\(nodes ${notReady.join(', ')}\\); sessions to the ready nodes work; see \`kubectl nsdebug status\`$`,
      ),
    );
    // per poll: the DaemonSet, the agent pods, their Warning events; never a read per pod
    const polls = lists(r.requests, /^\/apis\/apps\/v1\/namespaces\/nsdebug-system\/daemonsets\/nsdebug-agent$/).length;
    expect(polls).toBeGreaterThan(0);
    expect(lists(r.requests, /^\/api\/v1\/namespaces\/nsdebug-system\/events$/).length).toBeLessThanOrEqual(polls);
    expect(lists(r.requests, /^\/api\/v1\/namespaces\/nsdebug-system\/pods\/[^/]+$/)).toEqual([]);
  }, 300_000);

  test('uninstall: every agent pod gone, on the fake nodes too, and the reports with them', async () => {
    const r = await kubectl(['nsdebug', 'uninstall', '--timeout', '5m'], { timeout: 400_000 });
    expect(r.exitCode).toBe(0);
    await waitFor(
      'no agent pod left',
      async () => lines((await kubectl(['-n', AGENT_NAMESPACE, 'get', 'pods', '-o', 'name'])).stdout).length === 0,
      300_000,
      2000,
    );
    const leases = await kubectl(['-n', AGENT_NAMESPACE, 'get', 'leases', '-l', 'nsdebug.io/agent-report=true', '-o', 'name']);
    expect(lines(leases.stdout)).toEqual([]);
  }, 700_000);
});
