// `kubectl nsdebug cp -r` on the real cluster: a 200-entry tree (nested directories, symlinks, one
// pointing out of the tree's root and one absolute, a FIFO, a 5 MB binary) into the distroless pod
// (no tar, no shell) and back, byte for byte with modes and mtimes, the FIFO skipped with a line;
// a tree out of a CrashLoopBackOff container's last filesystem; tar streams through "-" both ways;
// a truncated upload leaves nothing in the container. What the container holds is read with the
// container's own busybox through kubectl exec where it has one, else with a --tools session.
import { createHash, randomBytes } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  chmodSync,
  lutimesSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { execa } from 'execa';

import { ExitCode } from '../../src/contract.js';

import { clusterEnv, INSTALL_SETUP_MS, installAgent, kubectl, waitForBackOff } from './helpers/kube.js';
import { POD_WAIT_MS, targetNode } from './helpers/node.js';

clusterEnv();
const { namespace: NS } = targetNode();
const lines = (v: unknown) =>
  String(v ?? '')
    .split('\n')
    .filter(Boolean);
const dir = mkdtempSync(join(tmpdir(), 'nsdebug-e2e-cp-tree-'));
const tree = `tree-${randomBytes(4).toString('hex')}`;
const nsdebug = (args: string[], opts: Parameters<typeof kubectl>[1] = {}) => kubectl(['nsdebug', '-n', NS, ...args], opts);

/** Every entry below root: its type, permission bits, mtime (s), a file's size and bytes' hash, a link's target. */
function describeTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, path));
      const mtime = Math.floor(st.mtimeMs / 1000);
      if (st.isSymbolicLink()) out.push(`${path} link -> ${readlinkSync(join(root, path))}`);
      else if (st.isDirectory()) {
        out.push(`${path} dir ${(st.mode & 0o777).toString(8)} ${mtime}`);
        walk(path);
      } else if (st.isFile()) {
        const hash = createHash('sha256')
          .update(readFileSync(join(root, path)))
          .digest('hex');
        out.push(`${path} file ${(st.mode & 0o777).toString(8)} ${mtime} ${st.size} ${hash}`);
      } else out.push(`${path} special`);
    }
  };
  walk('');
  return out;
}

/** The same, as the session's busybox lists it inside the container: `./PATH dir MODE MTIME UID`, `./PATH file MODE MTIME SIZE UID`, `./PATH -> TARGET`. */
const insideList = (entries: string[], uid: string) =>
  entries
    .map((e) => {
      const [path, kind, ...rest] = e.split(' ');
      if (kind === 'link') return `./${path} ${rest.join(' ')}`;
      if (kind === 'dir') return `./${path} dir ${rest.join(' ')} ${uid}`;
      return `./${path} file ${rest.slice(0, 3).join(' ')} ${uid}`;
    })
    .sort();

/** The local tree: 10 directories (2 deep) of 20 files, 3 symlinks, a FIFO, a 5 MB binary, with set modes and mtimes. */
async function makeTree(root: string): Promise<{ big: Buffer }> {
  mkdirSync(root);
  const when = (i: number) => new Date(Date.UTC(2024, 0, 1 + (i % 28), 3, 4, 5));
  const dirs: string[] = [];
  for (let d = 0; d < 10; d++) {
    const sub = d < 5 ? `d${d}` : `d${d - 5}/nested${d}`;
    mkdirSync(join(root, sub), { recursive: true });
    dirs.push(sub);
    for (let f = 0; f < 20; f++) {
      const path = join(root, sub, `f${f}.txt`);
      writeFileSync(path, `${sub}/f${f}\n`.repeat(f + 1));
      chmodSync(path, f % 3 === 0 ? 0o600 : f % 3 === 1 ? 0o644 : 0o755);
      utimesSync(path, new Date(), when(d * 20 + f));
    }
  }
  const big = randomBytes(5 * 1024 * 1024);
  writeFileSync(join(root, 'd0', 'big.bin'), big);
  chmodSync(join(root, 'd0', 'big.bin'), 0o640);
  utimesSync(join(root, 'd0', 'big.bin'), new Date(), when(7));
  symlinkSync('d1/f1.txt', join(root, 'relative-link'));
  symlinkSync('../../../../../etc/passwd', join(root, 'd2', 'escape-link'));
  symlinkSync('/etc/hostname', join(root, 'absolute-link'));
  await execa('mkfifo', [join(root, 'd3', 'fifo')]);
  lutimesSync(join(root, 'relative-link'), new Date(), when(1));
  // directories last (their entries changed their mtimes), deepest first
  for (const sub of [...dirs].reverse()) utimesSync(join(root, sub), new Date(), when(dirs.indexOf(sub)));
  chmodSync(join(root, 'd4'), 0o750);
  utimesSync(root, new Date(), when(20));
  return { big };
}

beforeAll(async () => {
  await installAgent();
}, INSTALL_SETUP_MS);

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await nsdebug(['distroless', '--tools', '--', 'rm', '-rf', `/tmp/${tree}`]);
  await kubectl(['-n', NS, 'exec', 'busybox', '--', 'rm', '-rf', '/tmp/from-tar', '/tmp/truncated']);
});

describe('kubectl nsdebug cp -r', () => {
  test('a 200-entry tree into the distroless pod and back: same bytes, modes, mtimes and links; the FIFO skipped with a line', async () => {
    const local = join(dir, tree);
    await makeTree(local);
    const expected = describeTree(local).filter((e) => !e.endsWith(' special'));
    expect(expected.length).toBeGreaterThanOrEqual(200);

    const up = await nsdebug(['cp', '-r', local, 'pod/distroless:/tmp/']);
    expect([up.exitCode, lines(up.stderr)]).toEqual([
      0,
      [`skipped ${join(local, 'd3', 'fifo')}: a FIFO (cp copies regular files, directories and symbolic links)`],
    ]);
    // inside, as the container sees it (busybox from the toolbox: distroless has no shell)
    const list = [
      `cd /tmp/${tree} && find . -mindepth 1 | while read -r f; do`,
      'if [ -L "$f" ]; then echo "$f -> $(readlink "$f")";',
      'elif [ -d "$f" ]; then stat -c "%n dir %a %Y %u" "$f"; else stat -c "%n file %a %Y %s %u" "$f"; fi; done; md5sum d0/big.bin',
    ].join(' ');
    const inside = await nsdebug(['distroless', '--tools', '--', 'sh', '-c', list]);
    expect(inside.exitCode).toBe(0);
    const seen = lines(inside.stdout);
    const md5 = (await execa('md5sum', [join(local, 'd0', 'big.bin')])).stdout.split(' ')[0];
    expect(seen.pop()).toBe(`${md5}  d0/big.bin`);
    const uid = lines((await nsdebug(['distroless', '--tools', '--', 'sh', '-c', "awk '/^Uid/{print $2}' /proc/1/status"])).stdout)[0]!;
    expect(seen.sort()).toEqual(insideList(expected, uid));
    expect(seen).toContain('./d2/escape-link -> ../../../../../etc/passwd');

    const back = join(dir, 'back');
    const down = await nsdebug(['cp', '-r', `distroless:/tmp/${tree}`, back]);
    expect([down.exitCode, String(down.stderr)]).toEqual([0, '']);
    expect(describeTree(back)).toEqual(expected);
    expect(readFileSync(join(back, 'd0', 'big.bin')).equals(readFileSync(join(local, 'd0', 'big.bin')))).toBe(true);
    expect(readdirSync(dir).filter((n) => n.includes('.nsdebug-'))).toEqual([]);
  }, 300_000);

  test(
    "out of a CrashLoopBackOff container: its last filesystem, the crashed instance's own writes in it",
    async () => {
      const local = join(dir, 'crashed-tmp');
      const copy = async () => {
        await waitForBackOff(NS, 'crashloop', POD_WAIT_MS);
        return nsdebug(['cp', '-r', 'pod/crashloop:/tmp', local]);
      };
      let r = await copy();
      // a slow node may end the next instance between the lookup and the copy, and kubelet then
      // removes this dead one: the CLI says so (65, nothing left to inspect); the next back-off has another
      if (r.exitCode === ExitCode.NOT_FOUND && /nothing left to inspect/.test(String(r.stderr))) r = await copy();
      expect(r.exitCode).toBe(0);
      expect(lines(r.stderr)[0]).toMatch(/^container app is not running \(.*\); copying from its last filesystem$/);
      expect(readFileSync(join(local, 'marker-crashed'), 'utf8')).toMatch(/^crashed-at-\d+\n$/);
    },
    2 * POD_WAIT_MS + 150_000,
  );

  test('"-": a tar stream out to tar(1), and one from tar(1) in', async () => {
    // nsdebug's own exit code and stderr first (a pipe into tar would show only tar's), then tar(1) reads what it wrote
    const archive = await nsdebug(['cp', '-r', 'pod/busybox:/etc', '-'], { encoding: 'buffer' });
    expect([archive.exitCode, Buffer.from(archive.stderr as Uint8Array).toString()]).toEqual([0, '']);
    const listed = await execa('tar', ['-tf', '-'], { input: archive.stdout as Uint8Array, reject: false });
    expect([listed.exitCode, String(listed.stderr)]).toEqual([0, '']);
    expect(lines(listed.stdout)).toEqual(expect.arrayContaining(['./', 'hostname', 'passwd']));

    const src = join(dir, 'for-tar');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'sub', 'note.txt'), 'through a pipe\n');
    const up = await execa('sh', ['-c', `tar -C ${src} -cf - . | kubectl nsdebug -n ${NS} cp - pod/busybox:/tmp/from-tar`], {
      reject: false,
    });
    expect([up.exitCode, up.stderr]).toEqual([0, '']);
    const cat = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'cat', '/tmp/from-tar/sub/note.txt']);
    expect(String(cat.stdout)).toBe('through a pipe');
  }, 120_000);

  test('a tar stream cut short: exit 73, and nothing of it is left in the container', async () => {
    const src = join(dir, 'for-truncated');
    mkdirSync(src);
    writeFileSync(join(src, 'whole.txt'), 'complete\n');
    writeFileSync(join(src, 'zbig.bin'), randomBytes(2 * 1024 * 1024));
    await kubectl(['-n', NS, 'exec', 'busybox', '--', 'rm', '-rf', '/tmp/truncated']);
    const script = `tar -C ${src} -cf - whole.txt zbig.bin | head -c 1500000 | kubectl nsdebug -n ${NS} cp - pod/busybox:/tmp/truncated`;
    const r = await execa('sh', ['-c', script], { reject: false });
    expect(r.exitCode).toBe(73);
    expect(lines(r.stderr)).toEqual([
      expect.stringMatching(/^error: stdin: the archive ends in the middle of "zbig.bin"; the copy was stopped$/),
    ]);
    // the cut may be seen before anything reached the container (a slow node's session starts later)
    const made = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'test', '-e', '/tmp/truncated']);
    if (made.exitCode !== 0) return;
    const ls = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'ls', '-A', '/tmp/truncated']);
    // the complete file may have landed before the cut; the cut one, or a temporary name, never
    expect(lines(ls.stdout).filter((n) => n !== 'whole.txt')).toEqual([]);
    // the directory filled at 0700 gets its own mode back, also when the copy fails
    const mode = await kubectl(['-n', NS, 'exec', 'busybox', '--', 'stat', '-c', '%a', '/tmp/truncated']);
    expect(String(mode.stdout)).toBe('755');
  }, 120_000);
});
