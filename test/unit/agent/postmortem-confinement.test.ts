// A post-mortem session's confinement comes from the dead container's OCI spec (containerd keeps
// it): capability names → bits, process.user → IDs, user namespaces → the node's IDs and no
// capabilities. And the container must be the one kubelet made for the pod's container of that name.
import { existsSync, readFileSync } from 'node:fs';

import { CAPABILITY_NAMES, capabilityBits, ociConfinement } from '../../../src/agent/confinement.js';
import { ociSpecOf } from '../../../src/agent/containerd.js';
import { checkBelongsToPod } from '../../../src/agent/postmortem.js';
import { compileSeccomp, type OciSeccomp } from '../../../src/agent/seccomp.js';
import { ExitCode } from '../../../src/contract.js';
import { NsdebugError } from '../../../src/errors.js';
import { fixture } from '../../fixtures.js';

/** containerd's default capability set (as in confinement.test.ts): CHOWN … SETFCAP, 14 of them */
const DEFAULT_CAPS = 0xa80425fbn;
const NET_BIND_SERVICE = 1n << 10n;
const NET_RAW = 1n << 13n;
const spec = (name: string): unknown => JSON.parse(fixture(name));

describe('capability names → bits', () => {
  test.each([
    [['CAP_CHOWN'], 1n],
    [['CAP_NET_BIND_SERVICE'], NET_BIND_SERVICE],
    [['CAP_SYS_CHROOT', 'CAP_SYS_ADMIN'], (1n << 18n) | (1n << 21n)],
    [['CAP_CHECKPOINT_RESTORE'], 1n << 40n],
    [[], 0n],
    [undefined, 0n],
  ])('%j → %s', (names, bits) => expect(capabilityBits(names, 'x')).toBe(bits));

  test('a name the list does not know is left out (fewer capabilities, never more)', () => {
    expect(capabilityBits(['CAP_NET_RAW', 'CAP_FUTURE_THING'], 'x')).toBe(NET_RAW);
  });

  test.each([['CAP_NET_RAW'], [['net_raw']], [[13]], [['CAP_NET_RAW; rm']]])('%j is refused', (names) =>
    expect(() => capabilityBits(names, 'process.capabilities.bounding')).toThrow(
      'process.capabilities.bounding is not a list of capability names',
    ),
  );

  const header = '/usr/include/linux/capability.h';
  (existsSync(header) ? test : test.skip)(`numbered as ${header} numbers them`, () => {
    const defined = [...readFileSync(header, 'utf8').matchAll(/^#define (CAP_[A-Z_]+)\s+(\d+)\s*$/gm)]
      .map(([, name, number]) => [name, Number(number)] as const)
      .filter(([name]) => name !== 'CAP_LAST_CAP');
    expect(defined.length).toBeGreaterThanOrEqual(CAPABILITY_NAMES.length);
    for (const [name, number] of defined)
      if (number < CAPABILITY_NAMES.length) expect([name, CAPABILITY_NAMES[number]]).toEqual([name, name]);
  });
  if (!existsSync(header)) console.log(`skipped the header check: ${header} is not installed (linux-libc-dev)`);
});

describe("the dead container's OCI spec → the session's confinement", () => {
  test("root with the runtime's default capabilities: its user, groups and sets, no seccomp", () => {
    expect(ociConfinement(spec('oci-spec-containerd-root-default-caps.json'))).toEqual({
      uid: [0, 0, 0],
      gid: [0, 0, 0],
      groups: [0, 10],
      capBounding: DEFAULT_CAPS,
      capPermitted: DEFAULT_CAPS,
      capEffective: DEFAULT_CAPS,
      capInheritable: 0n,
      capAmbient: 0n,
      noNewPrivs: false,
      seccompFilters: [],
    });
  });

  test('UID 1000, GID 3000, groups, only NET_BIND_SERVICE, no_new_privs; its seccomp profile compiled to BPF', () => {
    const fixture = spec('oci-spec-containerd-uid1000-drop-all-net-bind-nnp-seccomp.json') as { linux: { seccomp: OciSeccomp } };
    expect(ociConfinement(fixture, false)).toEqual({
      uid: [1000, 1000, 1000],
      gid: [3000, 3000, 3000],
      groups: [3000, 4000],
      capBounding: NET_BIND_SERVICE,
      capPermitted: NET_BIND_SERVICE,
      capEffective: NET_BIND_SERVICE,
      capInheritable: 0n,
      capAmbient: 0n,
      noNewPrivs: true,
      seccompFilters: [compileSeccomp(fixture.linux.seccomp)],
    });
  });

  test('the LSM label from the spec, only where the node has an LSM', () => {
    const withProfile = { process: { user: { uid: 0, gid: 0 }, apparmorProfile: 'cri-containerd.apparmor.d' } };
    expect(ociConfinement(withProfile, true).lsmExec).toBe('exec cri-containerd.apparmor.d');
    expect(ociConfinement(withProfile, false).lsmExec).toBeUndefined();
    expect(
      ociConfinement({ process: { user: { uid: 0, gid: 0 }, selinuxLabel: 'system_u:system_r:container_t:s0:c1,c2' } }, true).lsmExec,
    ).toBe('system_u:system_r:container_t:s0:c1,c2');
  });

  test('ambient capabilities only where permitted and inheritable (as capset and prctl require); no additionalGids: no groups', () => {
    expect(ociConfinement(spec('oci-spec-ambient-and-unknown-cap.json'))).toMatchObject({
      uid: [1000, 1000, 1000],
      groups: [],
      capBounding: NET_BIND_SERVICE | NET_RAW,
      capInheritable: NET_BIND_SERVICE,
      capAmbient: NET_BIND_SERVICE,
    });
  });

  test("a user-namespaced container: the node's IDs through its mappings, and no capability at all", () => {
    expect(ociConfinement(spec('oci-spec-userns-pod-root-mapped-to-65536.json'))).toEqual({
      uid: [65536, 65536, 65536],
      gid: [65536, 65536, 65536],
      groups: [65536, 65541],
      capBounding: 0n,
      capPermitted: 0n,
      capEffective: 0n,
      capInheritable: 0n,
      capAmbient: 0n,
      noNewPrivs: false,
      seccompFilters: [],
    });
  });

  test.each([
    [{ process: { user: { uid: -1, gid: 0 } } }, 'no valid process.user.uid/gid'],
    [{ process: { user: { uid: '0', gid: 0 } } }, 'no valid process.user.uid/gid'],
    [{ process: { user: { uid: 0, gid: 0, additionalGids: ['wheel'] } } }, 'process.user.additionalGids'],
    [{ process: { user: { uid: 0, gid: 0 }, noNewPrivileges: 'yes' } }, 'process.noNewPrivileges'],
    [{ process: { user: { uid: 0, gid: 0 }, capabilities: { bounding: 'CAP_SYS_ADMIN' } } }, 'process.capabilities.bounding'],
    [
      {
        process: { user: { uid: 7, gid: 0 } },
        linux: { namespaces: [{ type: 'user' }], uidMappings: [{ containerID: 0, hostID: 100000, size: 1 }] },
      },
      'uid 7 of the container is not mapped',
    ],
    [null, 'not an object'],
  ])('%j is refused', (bad, message) => expect(() => ociConfinement(bad)).toThrow(message));

  test("containerd's spec record: an OCI spec as JSON, anything else refused in one line", () => {
    const id = 'a'.repeat(64);
    const typeUrl = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
    expect(ociSpecOf({ labels: {}, spec: { typeUrl, json: '{"process":{}}' } }, id)).toEqual({ process: {} });
    expect(() => ociSpecOf({ labels: {} }, id)).toThrow('containerd holds no OCI spec for container aaaaaaaaaaaa');
    expect(() => ociSpecOf({ labels: {}, spec: { typeUrl: 'types.example/Other', json: '{}' } }, id)).toThrow('not an OCI runtime spec');
    expect(() => ociSpecOf({ labels: {}, spec: { typeUrl, json: '{' } }, id)).toThrow('is not JSON');
  });
});

describe("the container is the pod's container of that name (kubelet's labels)", () => {
  const id = 'b'.repeat(64);
  const POD = '2f0c1e5a-4d1b-4b6f-9e0a-3c8d2b7a9f10';
  const OTHER = '9d8c7b6a-1234-4f00-8a00-000000000001';
  const labels = (pod: string, name: string) => ({
    'io.kubernetes.pod.uid': pod,
    'io.kubernetes.container.name': name,
    'io.kubernetes.pod.name': 'web',
  });

  test('the same pod and name: accepted', () => expect(() => checkBelongsToPod(labels(POD, 'app'), id, POD, 'app')).not.toThrow());

  test.each([
    [
      labels(OTHER, 'app'),
      `container bbbbbbbbbbbb belongs to pod ${OTHER}'s container "app", not to pod ${POD}'s container "app": refused`,
    ],
    [
      labels(POD, 'sidecar'),
      `container bbbbbbbbbbbb belongs to pod ${POD}'s container "sidecar", not to pod ${POD}'s container "app": refused`,
    ],
    [{}, `container bbbbbbbbbbbb belongs to no pod (it has no kubelet labels), not to pod ${POD}'s container "app": refused`],
    [
      { 'io.kubernetes.pod.uid': '\u001b]52;c;x\u0007', 'io.kubernetes.container.name': 'a\u001b[2J' },
      `container bbbbbbbbbbbb belongs to pod "\\u001b]52;c;x\\u0007"'s container "a\\u001b[2J", not to pod ${POD}'s container "app": refused`,
    ],
  ])('%j: refused, exit 66, one line', (given, message) => {
    let thrown: unknown;
    try {
      checkBelongsToPod(given, id, POD, 'app');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(NsdebugError);
    expect([(thrown as NsdebugError).message, (thrown as NsdebugError).exitCode]).toEqual([message, ExitCode.FORBIDDEN]);
  });
});
