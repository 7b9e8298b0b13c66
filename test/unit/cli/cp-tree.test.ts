// The local half of cp -r on real temporary directories: a tree packed and unpacked again keeps its
// bytes, modes, mtimes and links and skips a FIFO with a line; an archive from the agent (the
// container's to choose) cannot write through a symlink it made, nor outside the scratch directory;
// moving into place merges into an existing directory, file by file.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

import { moveIntoPlace, packLocalTree, repackTar, TarUnpacker, type TreeCount } from '../../../src/cli/cp-tree.js';
import { NsdebugError } from '../../../src/errors.js';
import { TAR_END, tarHeader, tarPadding } from '../../../src/tar.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nsdebug-cp-tree-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const count = (): TreeCount => ({ files: 0, bytes: 0, skipped: 0 });

/** Unpack an archive (buffers) into a fresh scratch directory; the unpacker, once finished. */
async function unpack(parts: Buffer[], warnings: string[] = []): Promise<{ scratch: string; unpacker: TarUnpacker }> {
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch);
  const unpacker = new TarUnpacker(scratch, count(), (line) => warnings.push(line));
  unpacker.on('error', () => undefined); // reported to end's callback
  await new Promise<void>((resolve, reject) => unpacker.end(Buffer.concat(parts), (err?: Error | null) => (err ? reject(err) : resolve())));
  return { scratch, unpacker };
}

test('a tree packed and unpacked: bytes, modes, mtimes and symlinks kept, a FIFO skipped with a line', async () => {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'sub', 'deep'), { recursive: true });
  writeFileSync(join(src, 'sub', 'deep', 'a.bin'), Buffer.alloc(70_000, 7));
  chmodSync(join(src, 'sub', 'deep', 'a.bin'), 0o751);
  writeFileSync(join(src, 'empty'), '');
  symlinkSync('../../etc/passwd', join(src, 'sub', 'out'));
  execFileSync('mkfifo', [join(src, 'fifo')]);
  const mtime = new Date('2023-04-05T06:07:08Z');
  utimesSync(join(src, 'sub', 'deep', 'a.bin'), mtime, mtime);
  utimesSync(join(src, 'sub', 'deep'), mtime, mtime);
  chmodSync(join(src, 'sub'), 0o710);

  const packed = count();
  const warnings: string[] = [];
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch);
  const unpacker = new TarUnpacker(scratch, count(), (line) => warnings.push(line));
  await pipeline(
    packLocalTree(src, packed, (line) => warnings.push(line)),
    unpacker,
  );
  const { path, isTree } = unpacker.result();
  expect(isTree).toBe(true);
  const back = join(dir, 'back');
  moveIntoPlace(path, back);

  expect(warnings).toEqual([`skipped ${join(src, 'fifo')}: a FIFO (cp copies regular files, directories and symbolic links)`]);
  expect(packed).toEqual({ files: 6, bytes: 70_000, skipped: 1 });
  expect(readFileSync(join(back, 'sub', 'deep', 'a.bin')).equals(Buffer.alloc(70_000, 7))).toBe(true);
  expect(lstatSync(join(back, 'sub', 'deep', 'a.bin')).mode & 0o777).toBe(0o751);
  expect(lstatSync(join(back, 'sub', 'deep', 'a.bin')).mtime).toEqual(mtime);
  expect(lstatSync(join(back, 'sub', 'deep')).mtime).toEqual(mtime);
  expect(lstatSync(join(back, 'sub')).mode & 0o777).toBe(0o710);
  expect(readlinkSync(join(back, 'sub', 'out'))).toBe('../../etc/passwd');
  expect(readFileSync(join(back, 'empty'), 'utf8')).toBe('');
  expect(existsSync(join(back, 'fifo'))).toBe(false);
});

test('an archive that puts an entry below a symlink it made is refused; nothing is written through the link', async () => {
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  const parts = [
    tarHeader({ type: 'symlink', path: 'link', target: outside, mode: 0o777, mtimeMs: 0 }),
    tarHeader({ type: 'file', path: 'link/planted', mode: 0o644, mtimeMs: 0, size: 1 }),
    Buffer.from('x'),
    tarPadding(1),
    TAR_END,
  ];
  await expect(unpack(parts)).rejects.toThrow(
    new NsdebugError('the archive\'s entry "link/planted" is below link, which the archive made a symlink; nothing was copied', 73),
  );
  expect(existsSync(join(outside, 'planted'))).toBe(false);
});

test('an archive that replaces a directory it made by a symlink is refused', async () => {
  const parts = [
    tarHeader({ type: 'directory', path: 'd', mode: 0o755, mtimeMs: 0 }),
    tarHeader({ type: 'symlink', path: 'd', target: '/etc', mode: 0o777, mtimeMs: 0 }),
    TAR_END,
  ];
  await expect(unpack(parts)).rejects.toThrow('names a file where the archive made a directory');
});

test('an archive of one file unpacks as that file; a second entry of a name replaces the first', async () => {
  const body = (text: string) => [
    tarHeader({ type: 'file', path: 'only.txt', mode: 0o600, mtimeMs: 1_000_000, size: text.length }),
    Buffer.from(text),
    tarPadding(text.length),
  ];
  const { unpacker } = await unpack([...body('first'), ...body('second'), TAR_END]);
  const { path, isTree } = unpacker.result();
  expect(isTree).toBe(false);
  expect(readFileSync(path, 'utf8')).toBe('second');
});

test('an archive cut short is an error, not a partial tree', async () => {
  const parts = [tarHeader({ type: 'file', path: 'big', mode: 0o644, mtimeMs: 0, size: 4096 }), Buffer.alloc(100)];
  await expect(unpack(parts)).rejects.toThrow('the archive ends in the middle of "big"');
});

test('moving into place merges into an existing directory and replaces files, never a directory by a file', () => {
  const from = join(dir, 'from');
  const to = join(dir, 'to');
  mkdirSync(join(from, 'sub'), { recursive: true });
  mkdirSync(join(to, 'sub'), { recursive: true });
  writeFileSync(join(from, 'sub', 'new.txt'), 'new');
  writeFileSync(join(from, 'same.txt'), 'copied');
  writeFileSync(join(to, 'same.txt'), 'old');
  writeFileSync(join(to, 'sub', 'kept.txt'), 'kept');
  moveIntoPlace(from, to);
  expect(readFileSync(join(to, 'same.txt'), 'utf8')).toBe('copied');
  expect(readFileSync(join(to, 'sub', 'new.txt'), 'utf8')).toBe('new');
  expect(readFileSync(join(to, 'sub', 'kept.txt'), 'utf8')).toBe('kept');
  expect(existsSync(from)).toBe(false);

  mkdirSync(join(dir, 'file-src'));
  writeFileSync(join(dir, 'file-src', 'sub'), 'a file');
  expect(() => moveIntoPlace(join(dir, 'file-src'), to)).toThrow(`${join(to, 'sub')} is a directory; a file cannot replace it`);
});

test('a tar stream from stdin is checked and written again: other entries skipped, a cut stream fails before its end', async () => {
  const src = join(dir, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'a'), 'aaa');
  execFileSync('mkfifo', [join(src, 'p')]);
  const archive = execFileSync('tar', ['-C', src, '-cf', '-', 'a', 'p']);
  const warnings: string[] = [];
  const { Readable } = await import('node:stream');
  const repacked: Buffer[] = [];
  for await (const chunk of repackTar(Readable.from([archive]), count(), (line) => warnings.push(line))) repacked.push(chunk as Buffer);
  expect(warnings).toEqual(['skipped p: a FIFO (cp copies regular files, directories and symbolic links)']);
  const { unpacker } = await unpack(repacked);
  expect(readFileSync(unpacker.result().path, 'utf8')).toBe('aaa');

  const cut = async () => {
    for await (const _chunk of repackTar(Readable.from([archive.subarray(0, 700)]), count(), () => undefined));
  };
  await expect(cut()).rejects.toThrow('stdin: the archive ends in the middle of "a"; the copy was stopped');
});
