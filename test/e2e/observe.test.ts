// `--read-only` (observe a running container without changing a byte), `--process PID` (enter a
// process's own namespaces, here a grandchild PID namespace made inside a container with
// `unshare --pid --fork --mount-proc`, as the seed material does with nsenter), `ns` (the lsns
// view of a pod: who shares which namespace) and node/NAME (a shell in the node's own
// namespaces) on the real cluster.
import {
  clusterEnv,
  E2E_LABEL,
  INSTALL_SETUP_MS,
  installAgent,
  isReady,
  kubectl,
  kubectlJson,
  type PodJson,
  waitFor,
} from './helpers/kube.js';
import { onNode, targetNode } from './helpers/node.js';

clusterEnv();
const NODE = targetNode();
const NS = NODE.namespace;
// one per node type: the previous tier's may still be terminating
const PRIVILEGED_NS = `nsdebug-e2e-nested-${NODE.name}`;
const lines = (v: unknown) =>
  String(v ?? '')
    .split('\n')
    .filter(Boolean);

beforeAll(async () => {
  await installAgent();
  // unshare needs CAP_SYS_ADMIN: a namespace of its own that PodSecurity lets run it
  const objects = [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: PRIVILEGED_NS,
        labels: { [E2E_LABEL]: 'true', 'pod-security.kubernetes.io/enforce': 'privileged' },
        annotations: NODE.nodeSelector,
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'nested', namespace: PRIVILEGED_NS },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [
          {
            name: 'app',
            image: 'nsdebug.test/busybox:1',
            imagePullPolicy: 'Never',
            command: ['unshare', '--pid', '--fork', '--mount-proc', 'sh', '-c', 'sleep 3601 & sleep 3602'],
            securityContext: { privileged: true },
          },
        ],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'hostnet', namespace: PRIVILEGED_NS },
      spec: {
        terminationGracePeriodSeconds: 0,
        hostNetwork: true,
        containers: [{ name: 'app', image: 'nsdebug.test/busybox:1', imagePullPolicy: 'Never', command: ['sleep', '3603'] }],
      },
    },
  ];
  const r = await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  if (r.exitCode !== 0) throw new Error(`kubectl apply: ${String(r.stderr)}`);
  for (const pod of ['nested', 'hostnet'])
    await waitFor(`pod ${pod} Ready`, async () => isReady(await kubectlJson<PodJson>(['-n', PRIVILEGED_NS, 'get', 'pod', pod])));
}, INSTALL_SETUP_MS);

afterAll(async () => {
  await kubectl(['delete', 'namespace', PRIVILEGED_NS, '--wait=false']);
});

describe('kubectl nsdebug --read-only', () => {
  test("every write fails with EROFS, reads work, and the container's own view stays writable", async () => {
    const r = await kubectl([
      'nsdebug',
      '-n',
      NS,
      'pod/busybox',
      '--read-only',
      '--',
      'sh',
      '-c',
      'cat /marker.txt; touch /tmp/nsdebug-ro 2>&1',
    ]);
    expect([r.exitCode, lines(r.stdout)]).toEqual([1, ['nsdebug-marker', 'touch: /tmp/nsdebug-ro: Read-only file system']]);
    const ls = await kubectl([
      '-n',
      NS,
      'exec',
      'busybox',
      '--',
      'sh',
      '-c',
      'ls /tmp/nsdebug-ro 2>&1; touch /tmp/w && rm /tmp/w && echo writable',
    ]);
    expect(lines(ls.stdout)).toEqual(['ls: /tmp/nsdebug-ro: No such file or directory', 'writable']);
  }, 120_000);
});

describe('kubectl nsdebug --process PID', () => {
  test('ps shows the nesting; --process enters the grandchild PID namespace, where ps sees only it', async () => {
    const ps = await kubectl(['nsdebug', '-n', PRIVILEGED_NS, 'ps', 'pod/nested', '-o', 'json']);
    expect(ps.exitCode).toBe(0);
    const procs = JSON.parse(String(ps.stdout)) as Array<{ nsPids: number[]; command: string }>;
    const sleeper = procs.find((p) => p.command === 'sleep 3601');
    // host PID, PID in the container, PID in the nested namespace
    expect(sleeper?.nsPids).toHaveLength(3);
    const inside = sleeper!.nsPids[1]!;

    const r = await kubectl(['nsdebug', '-n', PRIVILEGED_NS, 'pod/nested', '--process', String(inside), '--', 'ps', '-o', 'pid,args']);
    expect(r.exitCode).toBe(0);
    const [header, ...rows] = lines(r.stdout).map((l) => l.trim().replace(/\s+/g, ' '));
    expect(header).toBe('PID COMMAND');
    const commands = rows.map((row) => row.replace(/^\d+ /, ''));
    // the nested namespace's PID 1 (the shell exec'd its last command), its child, and the session
    expect([...commands].sort()).toEqual(['nsdebug-init', 'ps -o pid,args', 'sleep 3601', 'sleep 3602']);
    expect(rows).toContainEqual('1 sleep 3602');
    // the container's own PID 1 (unshare) lives outside this namespace: not listed
    expect(commands.some((c) => c.startsWith('unshare'))).toBe(false);

    const missing = await kubectl(['nsdebug', '-n', PRIVILEGED_NS, 'pod/nested', '--process', '4242', '--', 'true']);
    expect(missing.exitCode).toBe(65);
    expect(lines(missing.stderr)).toEqual([expect.stringMatching(/no process 4242 in container [0-9a-f]{12}: see `kubectl nsdebug ps`/)]);
  }, 120_000);
});

describe('kubectl nsdebug node/NAME', () => {
  test("a shell in the node's own namespaces: its files, its hostname, its processes; audited", async () => {
    const node = NODE.name;
    // the kubelet's root directory on this node type (cluster.sh gives the host's its own)
    const kubeletDir = NODE.vm ? '/var/lib/kubelet' : '/var/lib/nsdebug-cluster/kubelet';
    const r = await kubectl(['nsdebug', `node/${node}`], {
      input: `hostname; test -d ${kubeletDir} && echo node-files; pgrep -x kubelet >/dev/null && echo kubelet-visible\nexit 0\n`,
    });
    const nodeHostname = String((await onNode(node, ['hostname'])).stdout).trim();
    expect([r.exitCode, lines(r.stdout)]).toEqual([0, [nodeHostname, 'node-files', 'kubelet-visible']]);
    // audited by the agent on that node, not another's
    const pod = String(
      (
        await kubectl([
          '-n',
          'nsdebug-system',
          'get',
          'pods',
          '--field-selector',
          `spec.nodeName=${node}`,
          '-o',
          'jsonpath={.items[0].metadata.name}',
        ])
      ).stdout,
    );
    const audit = lines((await kubectl(['-n', 'nsdebug-system', 'logs', pod, '-c', 'agent'])).stdout).filter((l) =>
      l.includes(`"node":"${node}"`),
    );
    expect(audit.length).toBeGreaterThan(0);
    expect(JSON.parse(audit.at(-1)!)).toMatchObject({ msg: 'session', node, exitCode: 0 });
  }, 120_000);
});

describe('kubectl nsdebug ns', () => {
  interface Entry {
    kind: string;
    inode: number;
    sharedBy: string[];
    nestedIn?: string;
    node: boolean;
    level?: number;
    processes: number;
    command: string;
  }
  const ns = async (namespace: string, pod: string) => {
    const r = await kubectl(['nsdebug', '-n', namespace, 'ns', `pod/${pod}`, '-o', 'json']);
    expect([r.exitCode, String(r.stderr)]).toEqual([0, '']);
    const entries = JSON.parse(String(r.stdout)) as Entry[];
    return (kind: string) => entries.filter((e) => e.kind === kind);
  };

  test('a normal pod: the sandbox shares its network, IPC and UTS; each container has its own PID and mount namespace', async () => {
    const of = await ns(NS, 'multi');
    for (const kind of ['net', 'ipc', 'uts'])
      expect(of(kind)).toEqual([expect.objectContaining({ sharedBy: ['sandbox', 'sidecar', 'app'], node: false })]);
    expect(of('pid').map((e) => [e.sharedBy, e.level])).toEqual([
      [['sandbox'], 1],
      [['sidecar'], 1],
      [['app'], 1],
    ]);
    expect(of('mnt').map((e) => e.sharedBy)).toEqual([['sandbox'], ['sidecar'], ['app']]);
    expect(of('user')).toEqual([expect.objectContaining({ sharedBy: ['node', 'sandbox', 'sidecar', 'app'] })]);
    // the table: lsns's columns
    const table = await kubectl(['nsdebug', '-n', NS, 'ns', 'multi']);
    expect(lines(table.stdout)[0]).toMatch(/^NS +TYPE +LEVEL +NPROCS +HOST PID +SHARED BY +COMMAND$/);
    expect(lines(table.stdout)).toContainEqual(expect.stringMatching(/^\d+ +net +- +3 +\d+ +sandbox, sidecar, app +\/pause$/));
  }, 120_000);

  test('shareProcessNamespace: one PID namespace for the sandbox and both containers, PID 1 the pause process', async () => {
    const of = await ns(NS, 'shared-pid');
    expect(of('pid')).toEqual([
      expect.objectContaining({ sharedBy: ['sandbox', 'app', 'helper'], level: 1, command: '/pause', node: false }),
    ]);
  }, 120_000);

  test("hostNetwork: the node's network namespace, shared with the sandbox and the container", async () => {
    const of = await ns(PRIVILEGED_NS, 'hostnet');
    expect(of('net')).toEqual([expect.objectContaining({ sharedBy: ['node', 'sandbox', 'app'], node: true })]);
    expect(of('pid').every((e) => !e.node)).toBe(true);
  }, 120_000);

  test('a PID namespace made inside a container: nested in it, level 2, with its own PID 1', async () => {
    const of = await ns(PRIVILEGED_NS, 'nested');
    expect(of('pid').filter((e) => e.nestedIn)).toEqual([
      expect.objectContaining({ nestedIn: 'app', sharedBy: [], level: 2, processes: 2, command: 'sleep 3602' }),
    ]);
    // unshare --mount-proc made a mount namespace too, but moved itself (the container's init) into
    // it before forking: that one is the container's own, the one the runtime made holds nobody
    expect(of('mnt').filter((e) => e.sharedBy.includes('app') || e.nestedIn)).toEqual([
      expect.objectContaining({ sharedBy: ['app'], processes: 3 }),
    ]);
  }, 120_000);

  test('a pod that does not exist: one line, exit 65', async () => {
    const r = await kubectl(['nsdebug', '-n', NS, 'ns', 'pod/no-such-pod']);
    expect([r.exitCode, lines(r.stderr)]).toEqual([
      65,
      [`error: pod no-such-pod not found in namespace ${NS}; check the name, or pass -n with the pod's namespace`],
    ]);
  }, 60_000);
});
