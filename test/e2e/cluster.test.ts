// The test bed itself (test/cluster): a real Kubernetes with TLS, Node+RBAC authorization,
// PodSecurity and service-account tokens; this host's legacy node and two production-shaped VM
// nodes (systemd, cgroup v2, containerd 2), running the demo workloads of this run's node type.
// If these fail, every other e2e result is meaningless.
import { readFileSync } from 'node:fs';

import { clusterEnv, E2E_LABEL, isReady, kubectl, kubectlJson, waitFor, type PodJson } from './helpers/kube.js';
import { HOST_NODE, onNode, targetNode } from './helpers/node.js';

const env = clusterEnv();
const NODE = targetNode();
const NS = NODE.namespace;
const POD_SUBNET = /^10\.244\.\d+\.\d+$/;
const limited = (args: string[]) => kubectl(['--kubeconfig', env.kubeconfigLimited, ...args]);
const getPod = (name: string) => kubectlJson<PodJson>(['-n', NS, 'get', 'pod', name]);

interface NodeJson {
  metadata: { name: string };
  status: {
    conditions: Array<{ type: string; status: string }>;
    addresses: Array<{ type: string; address: string }>;
    nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string; osImage: string };
  };
}

describe('the e2e cluster', () => {
  test('has its nodes Ready, one kubelet version everywhere: the legacy host and (with VMs) containerd 2 on Debian 13', async () => {
    const nodes = await waitFor('every node Ready', async () => {
      const list = (await kubectlJson<{ items: NodeJson[] }>(['get', 'nodes'])).items;
      return list.length > 0 && list.every((n) => n.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'))
        ? list
        : undefined;
    });
    expect(nodes.map((n) => n.metadata.name)).toContain(NODE.name);
    const versions = new Set(nodes.map((n) => n.status.nodeInfo.kubeletVersion));
    expect(versions.size).toBe(1);
    expect([...versions][0]).toMatch(/^v1\.\d+\.\d+$/);
    for (const n of nodes) {
      if (n.metadata.name === HOST_NODE) expect(n.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\/1\./);
      else {
        expect(n.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\/2\./);
        expect(n.status.nodeInfo.osImage).toMatch(/Debian GNU\/Linux 13/);
      }
    }
  }, 150_000);

  test.each(['busybox', 'distroless', 'multi', 'shared-pid', 'readonly', 'nonroot'])(
    'demo pod %s runs, is Ready and has a pod IP',
    async (name) => {
      const pod = await waitFor(`pod ${name} Ready`, async () => {
        const p = await getPod(name);
        return isReady(p) ? p : undefined;
      });
      expect(pod.status.phase).toBe('Running');
      expect(pod.status.podIP).toMatch(POD_SUBNET);
      for (const c of pod.status.containerStatuses ?? []) expect(c.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    },
    150_000,
  );

  test('the demo pods have the shapes the tests rely on', async () => {
    const multi = await getPod('multi');
    expect(multi.spec.containers.map((c) => c.name)).toEqual(['sidecar', 'app']);
    expect(multi.metadata.annotations?.['kubectl.kubernetes.io/default-container']).toBe('app');
    expect((await getPod('nonroot')).status.qosClass).toBe('Guaranteed');
    expect((await getPod('busybox')).status.qosClass).toBe('BestEffort');
    // the distroless image has no shell: exec of sh must fail to start
    const sh = await kubectl(['-n', NS, 'exec', 'distroless', '--', 'sh', '-c', 'true']);
    expect(sh.exitCode).not.toBe(0);
    expect(String(sh.stderr)).toMatch(/no such file or directory|not found/i);
    // readOnlyRootFilesystem really is read-only
    const write = await kubectl(['-n', NS, 'exec', 'readonly', '--', 'touch', '/x']);
    expect(write.exitCode).not.toBe(0);
    expect(String(write.stderr)).toMatch(/read-only file system/i);
    // shareProcessNamespace: app sees helper's process
    const ps = await kubectl(['-n', NS, 'exec', 'shared-pid', '-c', 'app', '--', 'ps', '-o', 'args']);
    expect(String(ps.stdout)).toContain('sleep 2147483647');
  }, 120_000);

  test('deployment web has 2 ready replicas', async () => {
    const deploy = await waitFor('web rolled out', async () => {
      const d = await kubectlJson<{ status: { readyReplicas?: number } }>(['-n', NS, 'get', 'deployment', 'web']);
      return d.status.readyReplicas === 2 ? d : undefined;
    });
    expect(deploy.status.readyReplicas).toBe(2);
    const pods = await kubectlJson<{ items: PodJson[] }>(['-n', NS, 'get', 'pods', '-l', 'app=web']);
    expect(pods.items.filter(isReady)).toHaveLength(2);
    expect(pods.items[0]?.status.qosClass).toBe('Burstable');
  }, 150_000);

  test('pod crashloop crashes with exit code 1 and is restarted (CrashLoopBackOff)', async () => {
    const status = await waitFor('crashloop restarted', async () => {
      const c = (await getPod('crashloop')).status.containerStatuses?.[0];
      return c && c.restartCount >= 1 ? c : undefined;
    });
    const terminated = status.state.terminated ?? status.lastState.terminated;
    expect(terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
    expect(status.state.running ? 'Running' : (status.state.waiting?.reason ?? status.state.terminated?.reason)).toMatch(
      /CrashLoopBackOff|Error|Running/,
    );
    // its logs reach kubectl through the API server and the kubelet
    const logs = await waitFor(
      'crashloop logs',
      async () => {
        for (const extra of [[], ['--previous']]) {
          const r = await kubectl(['-n', NS, 'logs', 'crashloop', ...extra]);
          if (r.exitCode === 0 && String(r.stdout).includes('crashloop: exiting 1')) return String(r.stdout);
        }
        return undefined;
      },
      60_000,
    );
    expect(logs).toContain('crashloop: exiting 1');
  }, 150_000);

  test('kubectl exec into busybox works and returns the exit code', async () => {
    const cat = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'cat', '/marker.txt']);
    expect([cat.exitCode, String(cat.stdout).trim()]).toEqual([0, 'nsdebug-marker']);
    const id = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'id', '-u']);
    expect(String(id.stdout).trim()).toBe('65534');
    const exit7 = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'sh', '-c', 'exit 7']);
    expect(exit7.exitCode).toBe(7);
    const stdin = await kubectl(['-n', NS, 'exec', '-i', 'busybox', '--', 'cat'], { input: 'through stdin\n', stripFinalNewline: false });
    expect(String(stdin.stdout)).toBe('through stdin\n');
    // default container of multi is app (the annotation), not the first one
    const role = await kubectl(['-n', NS, 'exec', 'multi', '--', 'sh', '-c', 'echo $ROLE']);
    expect(String(role.stdout).trim()).toBe('app');
  }, 120_000);

  test('pods reach each other and the API server through the kubernetes Service IP', async () => {
    const web = await kubectlJson<{ items: PodJson[] }>(['-n', NS, 'get', 'pods', '-l', 'app=web']);
    const ip = web.items[0]?.status.podIP ?? '';
    expect(ip).toMatch(POD_SUBNET);
    // busybox httpd serves /tmp (no index): 404 proves the TCP connection and the HTTP exchange.
    // (nc, not wget: Debian's static busybox wget crashes in getaddrinfo without glibc's NSS modules)
    const request = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${ip} 8080`;
    const http = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'sh', '-c', request]);
    expect(String(http.stdout).split('\n')[0]).toMatch(/^HTTP\/1\.[01] 404 Not Found/);
    const svc = await kubectlJson<{ spec: { clusterIP: string } }>(['-n', 'default', 'get', 'service', 'kubernetes']);
    // the API server's TLS port answers a plain HTTP request with Go's own 400: it was reached
    const api = await kubectl([
      '-n',
      NS,
      'exec',
      'busybox',
      '--',
      'sh',
      '-c',
      `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${svc.spec.clusterIP} 443`,
    ]);
    expect(String(api.stdout)).toContain('Client sent an HTTP request to an HTTPS server.');
  }, 60_000);

  test("a pod's service-account token is signed by the cluster and accepted by the API server", async () => {
    const token = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'cat', '/var/run/secrets/kubernetes.io/serviceaccount/token']);
    expect(token.exitCode).toBe(0);
    const cfg = readFileSync(env.kubeconfig, 'utf8');
    const server = /server: (\S+)/.exec(cfg)?.[1] ?? '';
    const who = await kubectl([
      '--kubeconfig',
      '/dev/null',
      '--server',
      server,
      '--insecure-skip-tls-verify',
      '--token',
      String(token.stdout).trim(),
      'auth',
      'whoami',
      '-o',
      'jsonpath={.status.userInfo.username}',
    ]);
    expect([who.exitCode, String(who.stdout)]).toEqual([0, `system:serviceaccount:${NS}:default`]);
  }, 60_000);

  test(`PodSecurity "restricted" is enforced in ${NS}`, async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'root-pod', namespace: NS, labels: { [E2E_LABEL]: 'true' } },
      spec: {
        containers: [{ name: 'c', image: 'nsdebug.test/busybox:1', imagePullPolicy: 'Never', securityContext: { privileged: true } }],
      },
    };
    const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input: JSON.stringify(pod) });
    expect(r.exitCode).not.toBe(0);
    expect(String(r.stderr)).toMatch(/violates PodSecurity "restricted:latest"/);
  });

  test('the limited user may list pods in demo, and nothing else: pods/exec is refused', async () => {
    const list = await limited(['-n', NS, 'get', 'pods', '-o', 'name']);
    expect(list.exitCode).toBe(0);
    expect(String(list.stdout).split('\n')).toContain('pod/busybox');
    const get = await limited(['-n', NS, 'get', 'pod', 'busybox', '-o', 'name']);
    expect(String(get.stdout).trim()).toBe('pod/busybox');

    const exec = await limited(['-n', NS, 'exec', 'busybox', '--', 'true']);
    expect(exec.exitCode).not.toBe(0);
    expect(String(exec.stderr)).toMatch(/forbidden: User "nsdebug-limited" cannot create resource "pods\/exec"/);
    const canI = await limited(['auth', 'can-i', 'create', 'pods/exec', '-n', NS]);
    expect(String(canI.stdout).trim()).toBe('no');
    const other = await limited(['-n', 'kube-system', 'get', 'pods']);
    expect(other.exitCode).not.toBe(0);
    expect(String(other.stderr)).toMatch(/forbidden/);
    const del = await limited(['-n', NS, 'delete', 'pod', 'busybox', '--dry-run=server']);
    expect(del.exitCode).not.toBe(0);
  }, 60_000);
});

// What makes the node a production-shaped one, seen on the node itself (ssh) and through the API:
// the VM tier's own checks (test/run-tiers.sh e2e-vm).
if (NODE.vm)
  describe(`the VM node ${NODE.name}`, () => {
    const onVm = async (script: string) => String((await onNode(NODE.name, ['sh', '-c', script])).stdout).trim();

    test('systemd is PID 1, cgroups are v2 only with every controller, the kubelet uses the systemd driver', async () => {
      expect(await onVm('cat /proc/1/comm')).toBe('systemd');
      expect(await onVm('stat -fc %T /sys/fs/cgroup')).toBe('cgroup2fs');
      expect((await onVm('cat /sys/fs/cgroup/cgroup.controllers')).split(' ')).toEqual(
        expect.arrayContaining(['cpu', 'io', 'memory', 'pids']),
      );
      expect(await onVm('systemctl is-active containerd kubelet')).toBe('active\nactive');
      // a demo container's cgroup, as the node sees it: a systemd scope below the pod's slice
      const pod = await getPod('busybox');
      const id = (pod.status.containerStatuses?.[0]?.containerID ?? '').replace(/^\w+:\/\//, '');
      const uid = pod.metadata.uid.replace(/-/g, '_');
      const scope = `/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid}.slice/cri-containerd-${id}.scope`;
      expect(await onVm(`cat ${scope}/cgroup.procs | head -n1 | xargs -I{} cat /proc/{}/comm`)).toBe('sleep');
    }, 60_000);

    test('pods on this node and pods on the host node reach each other', async () => {
      const podIp = async (namespace: string) =>
        (await kubectlJson<{ items: PodJson[] }>(['-n', namespace, 'get', 'pods', '-l', 'app=web'])).items[0]?.status.podIP ?? '';
      const request = (ip: string) => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 ${ip} 8080`;
      for (const [from, to] of [
        [NS, 'demo'],
        ['demo', NS],
      ] as const) {
        const ip = await podIp(to);
        expect(ip).toMatch(POD_SUBNET);
        const http = await kubectl(['-n', from, 'exec', 'busybox', '--', 'sh', '-c', request(ip)]);
        expect([from, to, String(http.stdout).split('\n')[0]]).toEqual([from, to, expect.stringMatching(/^HTTP\/1\.[01] 404 Not Found/)]);
      }
    }, 60_000);

    test("a user-namespaced pod (hostUsers: false) runs here: its uid 0 is not the node's", async () => {
      const pod = await waitFor('pod userns Ready', async () => {
        const p = await getPod('userns');
        return isReady(p) ? p : undefined;
      });
      expect(pod.spec.nodeName).toBe(NODE.name);
      const map = await kubectl(['-n', NS, 'exec', 'userns', '--', 'cat', '/proc/self/uid_map']);
      const [inside, outside, count] = String(map.stdout).trim().split(/\s+/).map(Number);
      expect(inside).toBe(0);
      expect(outside).toBeGreaterThan(0);
      expect(count).toBe(65536);
    }, 120_000);
  });
