// `kubectl nsdebug cp` on the real cluster: a 5 MB binary into the distroless pod (no tar, no
// shell) and back, byte for byte with its mode and mtime; the container's user owns what is
// copied in; a read-only root is refused; the container's own symlinks cannot lead out of it.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { clusterEnv, INSTALL_SETUP_MS, installAgent, kubectl } from './helpers/kube.js';
import { targetNode } from './helpers/node.js';

clusterEnv();
const { name: NODE, namespace: NS } = targetNode();
const lines = (v: unknown) =>
  String(v ?? '')
    .split('\n')
    .filter(Boolean);
const dir = mkdtempSync(join(tmpdir(), 'nsdebug-e2e-cp-'));
const name = `blob-${randomBytes(4).toString('hex')}.bin`;

beforeAll(async () => {
  await installAgent();
}, INSTALL_SETUP_MS);

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await kubectl(['nsdebug', '-n', NS, 'distroless', '--tools', '--', 'rm', '-f', `/tmp/${name}`]);
});

describe('kubectl nsdebug cp', () => {
  test('a 5 MB binary into the distroless pod and back: same bytes, mode and mtime', async () => {
    const local = join(dir, name);
    const bytes = randomBytes(5 * 1024 * 1024);
    writeFileSync(local, bytes);
    chmodSync(local, 0o750);
    const mtime = new Date('2024-01-02T03:04:05Z');
    utimesSync(local, new Date(), mtime);

    const up = await kubectl(['nsdebug', '-n', NS, 'cp', local, 'pod/distroless:/tmp/']);
    expect([up.exitCode, String(up.stderr)]).toEqual([0, '']);
    // seen from inside, with nsdebug's busybox: size, mode, owner (the container's user)
    const inside = await kubectl(['nsdebug', '-n', NS, 'distroless', '--tools', '--', 'stat', '-c', '%s %a %u', `/tmp/${name}`]);
    const uid = (await kubectl(['nsdebug', '-n', NS, 'distroless', '--tools', '--', 'sh', '-c', "awk '/^Uid/{print $2}' /proc/1/status"]))
      .stdout;
    expect(lines(inside.stdout)).toEqual([`${bytes.length} 750 ${String(uid).trim()}`]);

    const back = join(dir, 'back.bin');
    const down = await kubectl(['nsdebug', '-n', NS, 'cp', `distroless:/tmp/${name}`, back]);
    expect([down.exitCode, String(down.stderr)]).toEqual([0, '']);
    expect(readFileSync(back).equals(bytes)).toBe(true);
    expect(statSync(back).mode & 0o777).toBe(0o750);
    expect(statSync(back).mtime).toEqual(mtime);
  }, 120_000);

  test('a read-only root is refused in one line, exit 73, and nothing changes', async () => {
    const local = join(dir, 'small.txt');
    writeFileSync(local, 'x\n');
    const r = await kubectl(['nsdebug', '-n', NS, 'cp', local, 'pod/readonly:/small.txt']);
    expect([r.exitCode, lines(r.stderr)]).toEqual([
      73,
      [
        `error: the agent on node ${NODE} could not copy ${local} into container app of pod ${NS}/readonly: /small.txt: read-only file system (the container's root or a read-only volume); copy to a writable volume such as an emptyDir`,
      ],
    ]);
  }, 60_000);

  test("the container's symlinks and .. resolve inside the container, never on the node", async () => {
    // an absolute symlink the container made: read by the agent without care, it would name the agent's own file
    const link = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'ln', '-sf', '/etc/hostname', '/tmp/nsdebug-link']);
    expect(link.exitCode).toBe(0);
    const viaLink = await kubectl(['nsdebug', '-n', NS, 'cp', 'busybox:/tmp/nsdebug-link', '-']);
    expect([viaLink.exitCode, String(viaLink.stdout)]).toEqual([0, 'busybox']);
    const viaDots = await kubectl(['nsdebug', '-n', NS, 'cp', 'busybox:../../../../../etc/hostname', '-']);
    expect([viaDots.exitCode, String(viaDots.stdout)]).toEqual([0, 'busybox']);
  }, 60_000);

  test('a missing file: exit 65 and no local file', async () => {
    const r = await kubectl(['nsdebug', '-n', NS, 'cp', 'busybox:/no/such/file', join(dir, 'missing')]);
    expect([r.exitCode, lines(r.stderr)]).toEqual([
      65,
      [
        `error: the agent on node ${NODE} could not copy /no/such/file out of container busybox of pod ${NS}/busybox: /no/such/file: no such file or directory`,
      ],
    ]);
    expect(() => statSync(join(dir, 'missing'))).toThrow();
  }, 60_000);
});
