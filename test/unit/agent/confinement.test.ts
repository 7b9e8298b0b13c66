import { idInNamespace, lsmExecLabel, parseCredentials, sessionConfinement } from '../../../src/agent/confinement.js';
import { fixture } from '../../fixtures.js';

/** containerd's default capability set (CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP) */
const DEFAULT_CAPS = 0xa80425fbn;
const NET_BIND_SERVICE = 1n << 10n;

describe('the confinement lines of /proc/PID/status', () => {
  test('a restricted pod: UID 1000, all capabilities dropped, no_new_privs, a seccomp filter', () => {
    expect(parseCredentials(fixture('status-restricted-uid1000-drop-all-seccomp.txt'))).toEqual({
      uid: [1000, 1000, 1000],
      gid: [3000, 3000, 3000],
      groups: [2000, 3000],
      capInheritable: 0n,
      capPermitted: 0n,
      capEffective: 0n,
      capBounding: 0n,
      capAmbient: 0n,
      noNewPrivs: true,
      seccomp: 2,
    });
  });

  test("a root container with the runtime's default capabilities and no seccomp", () => {
    expect(parseCredentials(fixture('status-root-default-caps-unconfined.txt'))).toMatchObject({
      uid: [0, 0, 0],
      groups: [],
      capPermitted: DEFAULT_CAPS,
      capEffective: DEFAULT_CAPS,
      capBounding: DEFAULT_CAPS,
      noNewPrivs: false,
      seccomp: 0,
    });
  });

  test('real, effective and saved IDs are kept apart; ambient capabilities are read', () => {
    expect(parseCredentials(fixture('status-uid1000-ambient-net-bind.txt'))).toMatchObject({
      uid: [1000, 1001, 1002],
      gid: [100, 101, 102],
      capAmbient: NET_BIND_SERVICE,
      seccomp: 2,
    });
  });

  test('kernels without CapAmb, NoNewPrivs or Seccomp lines: none of them', () => {
    const old = fixture('status-root-default-caps-unconfined.txt').replace(/^(CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):.*\n/gm, '');
    expect(parseCredentials(old)).toMatchObject({ capAmbient: 0n, noNewPrivs: false, seccomp: 0 });
  });

  test.each([
    ['a missing Uid line', (s: string) => s.replace(/^Uid:.*\n/m, ''), 'Uid'],
    ['a short Gid line', (s: string) => s.replace(/^Gid:.*$/m, 'Gid:\t0\t0'), 'Gid'],
    ['a negative group', (s: string) => s.replace(/^Groups:.*$/m, 'Groups:\t-1'), 'Groups'],
    ['a missing Groups line', (s: string) => s.replace(/^Groups:.*\n/m, ''), 'Groups'],
    ['a short capability mask', (s: string) => s.replace(/^CapEff:.*$/m, 'CapEff:\tfff'), 'CapEff'],
    ['a missing bounding set', (s: string) => s.replace(/^CapBnd:.*\n/m, ''), 'CapBnd'],
    ['an unknown seccomp mode', (s: string) => s.replace(/^Seccomp:.*$/m, 'Seccomp:\t3'), 'Seccomp'],
  ])('%s is an error, never a default', (_, edit, key) => {
    expect(() => parseCredentials(edit(fixture('status-root-default-caps-unconfined.txt')))).toThrow(`malformed /proc/PID/status: ${key}`);
  });
});

describe('IDs inside a user namespace', () => {
  const map = '         0     100000      65536\n     65536          0          1\n';
  test.each([
    [100000, 0],
    [101000, 1000],
    [0, 65536],
    [165536, undefined],
  ])('host %i → %p', (host, inside) => expect(idInNamespace(host, map)).toBe(inside));
  test('the identity map of the initial namespace', () => expect(idInNamespace(1000, '0 0 4294967295\n')).toBe(1000));
});

describe('the LSM label for attr/exec', () => {
  test.each([
    ['cri-containerd.apparmor.d (enforce)\n', 'exec cri-containerd.apparmor.d'],
    ['my profile (complain)', 'exec my profile'],
    ['unconfined\n', undefined],
    ['unconfined (unconfined)', undefined],
    ['', undefined],
    ['system_u:system_r:container_t:s0:c123,c456\0', 'system_u:system_r:container_t:s0:c123,c456'],
  ])('%j → %p', (current, exec) => expect(lsmExecLabel(current)).toBe(exec));
});

describe("a session's confinement", () => {
  const filters = [Buffer.alloc(8)];
  const root = parseCredentials(fixture('status-root-default-caps-unconfined.txt'));
  const restricted = parseCredentials(fixture('status-restricted-uid1000-drop-all-seccomp.txt'));

  test("by default: the target's own credentials, capabilities, no_new_privs and filters", () => {
    expect(sessionConfinement(restricted, undefined, { seccompFilters: filters })).toEqual({
      uid: [1000, 1000, 1000],
      gid: [3000, 3000, 3000],
      groups: [2000, 3000],
      capBounding: 0n,
      capPermitted: 0n,
      capEffective: 0n,
      capInheritable: 0n,
      capAmbient: 0n,
      noNewPrivs: true,
      seccompFilters: filters,
    });
  });

  test("--user 0 in a root container: root with the target's sets, never beyond its bounding set", () => {
    const wider = { ...root, capPermitted: (1n << 41n) - 1n, capEffective: (1n << 41n) - 1n };
    expect(sessionConfinement(wider, { uid: 0 }, { seccompFilters: [] })).toMatchObject({
      uid: [0, 0, 0],
      gid: [0, 0, 0],
      groups: [],
      capPermitted: DEFAULT_CAPS,
      capEffective: DEFAULT_CAPS,
      capBounding: DEFAULT_CAPS,
    });
  });

  test("--user 0 in a UID 1000 pod gets the target's (empty) sets: root in name only", () => {
    expect(sessionConfinement(restricted, { uid: 0 }, { seccompFilters: filters })).toMatchObject({
      uid: [0, 0, 0],
      capPermitted: 0n,
      capEffective: 0n,
      noNewPrivs: true,
      seccompFilters: filters,
    });
  });

  test('a non-root --user gets no permitted, effective or ambient capabilities; GID defaults to the UID', () => {
    const ambient = parseCredentials(fixture('status-uid1000-ambient-net-bind.txt'));
    expect(sessionConfinement(ambient, { uid: 2000 }, { seccompFilters: filters, lsmExec: 'exec p' })).toMatchObject({
      uid: [2000, 2000, 2000],
      gid: [2000, 2000, 2000],
      capPermitted: 0n,
      capEffective: 0n,
      capAmbient: 0n,
      capInheritable: NET_BIND_SERVICE,
      capBounding: DEFAULT_CAPS,
      lsmExec: 'exec p',
    });
    expect(sessionConfinement(root, { uid: 2000, gid: 5 }, { seccompFilters: [] }).gid).toEqual([5, 5, 5]);
  });
});
