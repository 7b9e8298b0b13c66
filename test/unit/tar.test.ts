// src/tar.ts, the `cp -r` wire format: the headers it writes, extracted by the real GNU tar and
// busybox tar; archives those write (pax, gnu, ustar, v7, busybox) parsed at any chunking, every
// entry and byte checked; and hostile input, which must fail with a TarError a user can act on.
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { execa, execaSync } from 'execa';

import { TAR_END, TarError, TarParser, tarHeader, tarPadding, type TarEntry } from '../../src/tar.js';

type Writable = Exclude<TarEntry, { type: 'other' }>;

const temps: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'nsdebug-tar-'));
  temps.push(dir);
  return dir;
};
afterAll(() => temps.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const which = (name: string) => execaSync('which', [name], { reject: false }).stdout || undefined;
const BUSYBOX = which('busybox');
if (!BUSYBOX) console.warn('skipped: no busybox on PATH to check its tar against');
const withBusybox = BUSYBOX ? test : test.skip;
// GNU tar converts names to and from the locale's charset in pax headers
const env = { LC_ALL: 'C.UTF-8' };
/** A command's stdout, as bytes. */
const bytesOf = async (file: string, args: string[], cwd: string) => {
  const { stdout } = await execa(file, args, { cwd, env, encoding: 'buffer' });
  return Buffer.from(stdout.buffer, stdout.byteOffset, stdout.byteLength);
};

/** An archive of entries (files with their bodies), as the agent would write it. */
function archive(entries: [Writable, Buffer?][]): Buffer {
  return Buffer.concat([
    ...entries.flatMap(([entry, body = Buffer.alloc(0)]) => [tarHeader(entry), body, tarPadding(body.length)]),
    TAR_END,
  ]);
}

interface Parsed {
  entry: TarEntry;
  data?: Buffer;
}

/** Every entry of an archive fed to a parser `step` bytes at a time, with its body; checks the events' order and sizes. */
function parse(input: Buffer, step = input.length): Parsed[] {
  const parser = new TarParser();
  const out: Parsed[] = [];
  let filled = 0;
  let ended = false;
  // plain throws, not expect(): this runs once per byte of a 1 MiB file
  const take = (events: ReturnType<TarParser['push']>) => {
    for (const event of events) {
      const data = out.at(-1)?.data;
      if (ended) throw new Error('an event after the end');
      if (event.kind === 'end') ended = true;
      else if (event.kind === 'data') {
        if (!data || filled + event.chunk.length > data.length) throw new Error('data beyond the size of a file entry');
        filled += event.chunk.copy(data, filled);
      } else {
        if (data && filled !== data.length) throw new Error('an entry before the data of the last one');
        out.push({ entry: event.entry, data: event.entry.type === 'file' ? Buffer.alloc(event.entry.size) : undefined });
        filled = 0;
      }
    }
  };
  for (let pos = 0; pos < input.length; pos += step) take(parser.push(input.subarray(pos, pos + step)));
  take(parser.finish());
  expect([ended, parser.ended]).toEqual([true, true]);
  return out;
}

/** The TarError parsing input throws (whole, then at finish), or fails the test. */
function tarError(input: Buffer, limits?: ConstructorParameters<typeof TarParser>[0]): string {
  try {
    const parser = new TarParser(limits);
    parser.push(input);
    parser.finish();
  } catch (err) {
    expect(err).toBeInstanceOf(TarError);
    const message = (err as Error).message;
    expect(message).toMatch(/^\S[^\n]*\S$/); // one line, no stack
    return message;
  }
  throw new Error('no TarError');
}

/** header with a field overwritten and its checksum made right again, as a careful attacker would. */
function patch(header: Buffer, offset: number, bytes: Buffer | string): Buffer {
  const b = Buffer.from(header);
  (typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes).copy(b, offset);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b.subarray(0, 512)) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

const T = 1_700_000_000_000; // a whole second, in ms
const file = (path: string, body: Buffer | string, more: Partial<Writable> = {}): [Writable, Buffer] => {
  const data = Buffer.from(body);
  return [{ type: 'file', path, mode: 0o644, mtimeMs: T, size: data.length, ...more } as Writable, data];
};
const dir = (path: string, more: Partial<Writable> = {}): [Writable] => [
  { type: 'directory', path, mode: 0o755, mtimeMs: T, ...more } as Writable,
];
const link = (path: string, target: string): [Writable] => [{ type: 'symlink', path, target, mode: 0o777, mtimeMs: T }];

// Paths that take each way a header holds a name: ustar's name field, its prefix + name, and pax.
const SPLIT = `${'p'.repeat(60)}/${'q'.repeat(60)}/${'r'.repeat(40)}.txt`; // 166 bytes, splittable
const LONG_COMPONENT = `deep/${'n'.repeat(120)}.bin`; // no '/' leaves ≤ 100 bytes after it
const UNICODE = 'données/café ☃ 🐧.txt';
const LONG_TARGET = `${'../'.repeat(20)}${'t'.repeat(80)}`;

// in the order a tar writer walks a tree: GNU tar restores a directory's mtime once past it
const written: [Writable, Buffer?][] = [
  dir('.', { mode: 0o755 }),
  dir('a', { mode: 0o700, mtimeMs: T + 5000 }),
  dir('a/b', { mode: 0o1777 }),
  file('a/b/plain.txt', 'hello\n', { mode: 0o640, mtimeMs: T + 1500.25 }),
  file('a/empty', ''),
  file('a/random.bin', randomBytes((1 << 20) | 123), { mode: 0o755 }),
  file('a/exact-block', randomBytes(512)),
  link('a/passwd', '../../etc/passwd'),
  link('a/long-target', LONG_TARGET),
  link('a/ünï', 'ça/va'),
  dir('p'.repeat(60)),
  dir(`${'p'.repeat(60)}/${'q'.repeat(60)}`),
  file(SPLIT, 'split\n'),
  dir('deep'),
  file(LONG_COMPONENT, 'long\n', { mode: 0o600 }),
  dir('données'),
  file(UNICODE, 'unicode\n'),
  // its ustar name field, cut at 100 bytes, ends in half a character
  file(`données/x${'é'.repeat(80)}`, 'cut\n'),
];

describe('tarHeader', () => {
  test('a plain entry is one ustar block: uid/gid 0, no owner names, a trailing "/" on directories, a right checksum', () => {
    const h = tarHeader({ type: 'directory', path: 'a/b', mode: 0o40755, mtimeMs: T });
    expect(h.length).toBe(512);
    expect(h.toString('latin1', 0, 5)).toBe('a/b/\0');
    expect(h.toString('latin1', 100, 148)).toBe('0000755\0' + '0000000\0'.repeat(2) + '00000000000\0' + `${(T / 1000).toString(8)}\0`);
    expect(h.toString('latin1', 156, 157)).toBe('5');
    expect(h.toString('latin1', 257, 265)).toBe('ustar\x0000');
    expect(h.subarray(265, 329).every((b) => b === 0)).toBe(true);
    expect(parse(Buffer.concat([h, TAR_END]))).toEqual([{ entry: { type: 'directory', path: 'a/b', mode: 0o755, mtimeMs: T } }]);
  });

  test.each([
    ['a 166-byte path that splits into prefix and name', file(SPLIT, 'x')[0], false],
    ['a component too long to split', file(LONG_COMPONENT, 'x')[0], true],
    ['a non-ASCII name', file(UNICODE, 'x')[0], true],
    ['a link target over 100 bytes', link('l', LONG_TARGET)[0], true],
    ['a non-ASCII link target', link('l', 'ça')[0], true],
    ['a fractional mtime', file('f', 'x', { mtimeMs: T + 0.5 })[0], true],
    ['a negative mtime', file('f', 'x', { mtimeMs: -1500 })[0], true],
    ['a size over 8 GiB - 1', file('f', '', { size: 2 ** 33 })[0], true],
  ])('%s: pax header %p', (_, entry, pax) => {
    const h = tarHeader(entry);
    expect(h.toString('latin1', 156, 157)).toBe(pax ? 'x' : entry.type === 'file' ? '0' : '2');
    const events = new TarParser().push(h);
    expect(events).toEqual([{ kind: 'entry', entry }]);
  });

  test('writes a fraction that rounds to a whole second as that second', () => {
    expect(new TarParser().push(tarHeader(dir('d', { mtimeMs: 1999.9999999999 })[0]))).toEqual([
      { kind: 'entry', entry: dir('d', { mtimeMs: 2000 })[0] },
    ]);
  });

  test('tarPadding and TAR_END', () => {
    expect([0, 1, 511, 512, 513].map((n) => tarPadding(n).length)).toEqual([0, 511, 1, 0, 511]);
    expect(TAR_END.length).toBe(1024);
    expect(TAR_END.every((b) => b === 0)).toBe(true);
  });

  test.each([7, 0])('round-trips through TarParser in chunks of %p bytes (0: all at once)', (step) => {
    const input = archive(written);
    const got = parse(input, step || input.length);
    expect(got.map((p) => p.entry)).toEqual(written.map(([entry]) => entry));
    const same = got.map(({ data }, i) => (data ? data.equals(written[i]![1]!) : 'no data'));
    expect(same).toEqual(written.map(([, body]) => (body ? true : 'no data')));
  });
});

/** What a tar extracted to dir: the tree under it, as lstat and the files say. */
function tree(root: string) {
  const found = new Map<string, { stat: Stats; data?: Buffer; target?: string }>();
  const walk = (rel: string) => {
    const full = rel === '.' ? root : join(root, rel);
    const stat = lstatSync(full);
    found.set(rel, {
      stat,
      data: stat.isFile() ? readFileSync(full) : undefined,
      target: stat.isSymbolicLink() ? readlinkSync(full) : undefined,
    });
    if (stat.isDirectory()) for (const name of readdirSync(full)) walk(rel === '.' ? name : `${rel}/${name}`);
  };
  walk('.');
  return found;
}

describe.each([
  ['GNU tar', ['tar', '-xpf']],
  ['busybox tar', [BUSYBOX ?? 'busybox', 'tar', '-xf']],
])('what tarHeader writes, extracted by %s', (name, [bin, ...args]) => {
  (name === 'GNU tar' ? test : withBusybox)('has every entry, mode, mtime, link target and byte', async () => {
    const work = tempDir();
    const out = join(work, 'out');
    mkdirSync(out);
    writeFileSync(join(work, 'a.tar'), archive(written));
    const result = await execa(bin, [...args, join(work, 'a.tar'), '-C', out], { env, reject: false });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const got = tree(out);
    expect([...got.keys()].sort()).toEqual(written.map(([e]) => e.path).sort());
    for (const [entry, body] of written) {
      const { stat, data, target } = got.get(entry.path)!;
      expect([entry.path, stat.isDirectory(), stat.isFile(), stat.isSymbolicLink()]).toEqual([
        entry.path,
        entry.type === 'directory',
        entry.type === 'file',
        entry.type === 'symlink',
      ]);
      if (entry.type === 'symlink') {
        expect(target).toBe(entry.target);
        continue;
      }
      expect([entry.path, stat.mode & 0o7777]).toEqual([entry.path, entry.mode]);
      // busybox keeps whole seconds and sets a directory's mtime before filling it
      if (name === 'GNU tar') expect([entry.path, stat.mtimeMs]).toEqual([entry.path, entry.mtimeMs]);
      else if (entry.type === 'file') expect([entry.path, stat.mtimeMs]).toEqual([entry.path, Math.floor(entry.mtimeMs / 1000) * 1000]);
      if (entry.type === 'file') expect(data!.equals(body!)).toBe(true);
    }
  });
});

test('GNU tar lists what tarHeader writes without a warning', async () => {
  const work = tempDir();
  writeFileSync(join(work, 'a.tar'), archive(written));
  const { stdout, stderr } = await execa('tar', ['-tvf', join(work, 'a.tar')], { env });
  expect(stderr).toBe('');
  expect(stdout).toContain(`${SPLIT}\n`);
  expect(stdout).toContain(`a/long-target -> ${LONG_TARGET}\n`);
  expect(stdout).toContain(UNICODE);
});

describe('what real tar writes, parsed', () => {
  const src = tempDir();
  let expected: ReturnType<typeof tree>;
  beforeAll(() => {
    // nested directories, a 1 MiB random file, an empty one, a symlink out of the tree, long names
    // and link targets, a non-ASCII name, a FIFO and a hard link
    const make = (path: string, body: Buffer | string, mode = 0o644) => {
      writeFileSync(join(src, path), body);
      chmodSync(join(src, path), mode);
    };
    mkdirSync(join(src, 'a/b/c'), { recursive: true });
    make('a/b/c/random.bin', randomBytes(1 << 20), 0o750);
    make('a/empty', '');
    symlinkSync('../../etc/passwd', join(src, 'a/b/passwd'));
    symlinkSync(LONG_TARGET, join(src, 'a/long-target'));
    mkdirSync(join(src, 'deep'));
    make(LONG_COMPONENT, 'long\n');
    mkdirSync(join(src, 'données'));
    make(UNICODE, 'unicode\n', 0o600);
    mkdirSync(join(src, `${'p'.repeat(60)}/${'q'.repeat(60)}`), { recursive: true });
    make(SPLIT, 'split\n');
    execaSync('mkfifo', [join(src, 'a/fifo')]);
    make('a/hard-1', 'linked\n');
    linkSync(join(src, 'a/hard-1'), join(src, 'a/hard-2'));
    chmodSync(join(src, 'a/b'), 0o1777);
    utimesSync(join(src, 'a/empty'), 1_600_000_000.25, 1_600_000_000.25);
    expected = tree(src);
  });

  /** Checks every entry parsed against the tree, and returns the paths seen. */
  function check(got: Parsed[], nanoseconds: boolean): string[] {
    for (const { entry, data } of got) {
      const want = expected.get(entry.path);
      if (!want) throw new Error(`unexpected entry ${entry.path}`);
      const { stat } = want;
      if (entry.type === 'other') {
        expect(entry).toEqual({ type: 'other', path: entry.path, kind: stat.isFIFO() ? 'a FIFO' : 'a hard link' });
        continue;
      }
      const common = {
        path: entry.path,
        mode: stat.mode & 0o7777,
        mtimeMs: nanoseconds ? stat.mtimeMs : Math.floor(stat.mtimeMs / 1000) * 1000,
      };
      if (stat.isDirectory()) expect(entry).toEqual({ type: 'directory', ...common });
      else if (stat.isSymbolicLink()) expect(entry).toEqual({ type: 'symlink', ...common, target: want.target });
      else {
        expect(entry).toEqual({ type: 'file', ...common, size: stat.size });
        expect(data!.equals(want.data!)).toBe(true);
      }
    }
    return got.map((p) => p.entry.path).sort();
  }

  const dialects: [string, string, string[]][] = [
    ['GNU tar --format=pax', 'tar', ['--format=pax']],
    ['GNU tar --format=gnu', 'tar', ['--format=gnu']],
  ];
  if (BUSYBOX) dialects.push(['busybox tar', BUSYBOX, ['tar']]);
  else test.skip('busybox tar (no busybox on PATH)', () => {});

  describe.each(dialects)('%s', (name, bin, args) => {
    let input: Buffer;
    beforeAll(async () => {
      const command = bin === 'tar' ? ['-cf', '-', ...args, '.'] : [...args, '-cf', '-', '.'];
      input = await bytesOf(bin, command, src);
    });

    test('writes the extended headers this dialect is known for', () => {
      expect(input.includes(name.endsWith('pax') ? '/PaxHeaders' : '././@LongLink')).toBe(true);
    });

    test.each([1, 7, 0])('in chunks of %p bytes (0: all at once)', (step) => {
      const got = parse(input, step || input.length);
      // GNU's pax format keeps nanoseconds; the others whole seconds
      expect(check(got, name.endsWith('pax'))).toEqual([...expected.keys()].sort());
      // whichever of the two names tar meets first holds the data, the other links to it
      expect(
        got
          .filter((p) => p.entry.path.startsWith('a/hard-'))
          .map((p) => p.entry.type)
          .sort(),
      ).toEqual(['file', 'other']);
    });
  });

  // ustar and v7 cannot hold the long names: archive what fits (v7: no prefix either)
  test.each([
    ['ustar', ['--exclude=./deep', '--exclude=./a/long-target', '.']],
    ['v7', ['a/empty', 'a/b/passwd', 'a/b/c', 'données']],
  ])('GNU tar --format=%s', async (format, paths) => {
    const got = parse(await bytesOf('tar', ['-cf', '-', `--format=${format}`, ...paths], src), 7);
    const seen = check(got, false);
    expect(seen).toEqual(
      format === 'v7'
        ? ['a/b/c', 'a/b/c/random.bin', 'a/b/passwd', 'a/empty', 'données', 'données/café ☃ 🐧.txt']
        : expect.arrayContaining([SPLIT, 'a/fifo', '.']),
    );
  });
});

/** A pax extended header ('x', or 'g' for a global one) holding records, each "key=value". */
function paxHeader(records: string[], type = 'x'): Buffer {
  const body = Buffer.from(
    records
      .map((kv) => {
        const rest = Buffer.byteLength(` ${kv}\n`);
        const length = rest + String(rest + String(rest).length).length;
        return `${length} ${kv}\n`;
      })
      .join(''),
  );
  const [entry] = file('PaxHeader', body);
  return Buffer.concat([patch(tarHeader(entry), 156, type), body, tarPadding(body.length)]);
}

describe('TarParser', () => {
  const [plain, hello] = file('f', 'hello');
  const one = Buffer.concat([tarHeader(plain), hello, tarPadding(5)]);

  test('passes file data on as views of the input, not copies', () => {
    const input = Buffer.concat([one, TAR_END]);
    const chunks = new TarParser().push(input).flatMap((e) => (e.kind === 'data' ? [e.chunk] : []));
    expect(chunks.map((c) => [c.buffer === input.buffer, c.byteOffset - input.byteOffset, c.toString()])).toEqual([[true, 512, 'hello']]);
  });

  test('ignores what follows the end marker: writers pad to a record with zeros, and some add more', () => {
    const parser = new TarParser();
    expect(parser.push(Buffer.concat([one, TAR_END, Buffer.from('trailing junk')])).map((e) => e.kind)).toEqual(['entry', 'data', 'end']);
    expect(parser.push(one)).toEqual([]);
    expect(parser.finish()).toEqual([]);
  });

  test('takes one zero block then the end of input as the end', () => {
    const parser = new TarParser();
    parser.push(Buffer.concat([one, Buffer.alloc(512)]));
    expect([parser.ended, parser.finish(), parser.ended]).toEqual([false, [{ kind: 'end' }], true]);
  });

  test.each([
    ['./a//b/', 'a/b'],
    ['././x', 'x'],
    ['a/./b', 'a/b'],
    ['./', '.'],
    ['.', '.'],
  ])('normalises %p to %p', (raw, path) => {
    const input = Buffer.concat([tarHeader({ type: 'directory', path: raw, mode: 0o755, mtimeMs: T }), TAR_END]);
    expect(parse(input).map((p) => p.entry.path)).toEqual([path]);
  });

  const h = tarHeader(plain);
  const entryOf = (header: Buffer, body = hello) => parse(Buffer.concat([header, body, tarPadding(body.length), TAR_END]))[0]!.entry;
  test.each([
    ['an octal field ended by a space', patch(h, 100, '0000644 '), { mode: 0o644 }],
    ['an octal field with leading spaces', patch(h, 100, '   644\0\0'), { mode: 0o644 }],
    ['an octal field without an end', patch(h, 124, '000000000005'), { size: 5 }],
    ['a base-256 size', patch(h, 124, Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5])), { size: 5 }],
    [
      'a negative base-256 mtime',
      patch(h, 136, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])),
      { mtimeMs: -2000 },
    ],
    ['mode bits beyond 0o7777 (a file type)', patch(h, 100, '0100644\0'), { mode: 0o644 }],
    ['a contiguous file (type 7)', patch(h, 156, '7'), {}],
    ['a v7 header (no magic), whose prefix field is not one', patch(patch(h, 257, Buffer.alloc(8)), 345, 'junk'), {}],
    ['a GNU header, which keeps times where ustar has its prefix', patch(h, 257, 'ustar  \0junk'.padEnd(88 + 12, '\0')), {}],
  ])('reads %s', (_, header, change) => {
    expect(entryOf(header)).toEqual({ ...plain, ...change });
  });

  test('accepts a checksum summed over signed bytes, as old tars did', () => {
    const b = tarHeader(file('é', 'hello')[0]).subarray(-512);
    b.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of b) sum += byte > 127 ? byte - 256 : byte;
    b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    expect(new TarParser().push(b)).toEqual([{ kind: 'entry', entry: { ...plain, path: 'é' } }]);
  });

  test('reads a v7 directory: a regular file whose name ends in "/"', () => {
    expect(entryOf(patch(patch(h, 0, 'd/\0'), 156, '\0'), Buffer.alloc(0))).toEqual({
      type: 'directory',
      path: 'd',
      mode: 0o644,
      mtimeMs: T,
    });
  });

  test('reads no data after a directory, whatever its size field says (a space hint in POSIX)', () => {
    const input = Buffer.concat([patch(tarHeader(dir('d')[0]), 124, '00000001000\0'), one, TAR_END]);
    expect(parse(input).map((p) => p.entry)).toEqual([dir('d')[0], plain]);
  });

  test.each([
    ['1', 'a hard link'],
    ['3', 'a character device'],
    ['4', 'a block device'],
    ['6', 'a FIFO'],
    ['Z', 'an entry of type "Z"'],
  ])('reports type %p as "%s" and skips its data', (type, kind) => {
    const input = Buffer.concat([patch(h, 156, type), hello, tarPadding(5), one, TAR_END]);
    expect(parse(input, 3)).toEqual([{ entry: { type: 'other', path: 'f', kind } }, { entry: plain, data: Buffer.from('hello') }]);
  });

  test.each([
    ['a pax path, mtime and size', ['path=ünï/côdé', 'mtime=1700000000.5', 'size=5'], { path: 'ünï/côdé', mtimeMs: T + 500 }],
    ['an empty pax value, which gives the header field back', ['path=other', 'path='], {}],
    ['keys nsdebug does not use (binary xattrs among them)', ['SCHILY.xattr.user.x=\xff\x00', 'atime=1.5', 'uid=1000'], {}],
  ])('reads %s', (_, records, change) => {
    expect(parse(Buffer.concat([paxHeader(records), one, TAR_END]), 5)[0]!.entry).toEqual({ ...plain, ...change });
  });

  test('reads the pax path, whatever the name field holds', () => {
    const input = Buffer.concat([paxHeader(['path=ünï']), patch(h, 0, Buffer.from([0xc3, 0])), hello, tarPadding(5), TAR_END]);
    expect(parse(input)[0]!.entry).toEqual({ ...plain, path: 'ünï' });
  });

  test('reads an empty extended header and empty numeric fields (as 0)', () => {
    const input = Buffer.concat([paxHeader([]), patch(h, 136, Buffer.alloc(12)), hello, tarPadding(5), TAR_END]);
    expect(parse(input)[0]!.entry).toEqual({ ...plain, mtimeMs: 0 });
  });

  test('ignores a global pax header', () => {
    expect(parse(Buffer.concat([paxHeader(['path=elsewhere', 'comment=x'], 'g'), one, TAR_END]))[0]!.entry).toEqual(plain);
  });
});

describe('hostile or broken input: a TarError that says what is wrong', () => {
  const [plain, hello] = file('f', 'hello');
  const h = tarHeader(plain);
  const one = Buffer.concat([h, hello, tarPadding(5)]);
  const named = (path: string) => Buffer.concat([tarHeader({ ...plain, path }), hello, tarPadding(5), TAR_END]);
  const viaPax = (...records: string[]) => Buffer.concat([paxHeader(records), one, TAR_END]);
  const big = file('big', randomBytes(1000))[0];

  test.each<[string, Buffer, ConstructorParameters<typeof TarParser>[0], RegExp]>([
    [
      'a bad checksum',
      Buffer.concat([Buffer.from(h).fill(0x41, 0, 1), TAR_END]),
      {},
      /^bad header checksum at byte 0: the archive is damaged or not a tar archive$/,
    ],
    ['a ".." name', named('../x'), {}, /^the entry name "\.\.\/x" has a "\.\." component, which could lead out of the destination$/],
    ['a ".." deeper in', named('a/../../b'), {}, /^the entry name "a\/\.\.\/\.\.\/b" has a "\.\." component/],
    ['".." alone', named('..'), {}, /"\.\." component/],
    ['an absolute name', named('/etc/x'), {}, /^the entry name "\/etc\/x" is absolute; an archive may hold only relative names$/],
    ['a NUL in a (pax) name', viaPax('path=a\0b'), {}, /^the entry name "a\\u0000b" contains a NUL byte$/],
    [
      'a NUL in a link target',
      Buffer.concat([paxHeader(['linkpath=x\0y']), tarHeader(link('l', 'z')[0]), TAR_END]),
      {},
      /^the link target of "l" contains a NUL byte$/,
    ],
    [
      'a name that is not UTF-8',
      Buffer.concat([patch(h, 0, Buffer.from([0x66, 0xff, 0])), hello, tarPadding(5), TAR_END]),
      {},
      /^a name or link target in the header at byte 0 is not valid UTF-8: "f\uFFFD"$/,
    ],
    ['an empty name', Buffer.concat([patch(h, 0, Buffer.alloc(100)), hello, tarPadding(5), TAR_END]), {}, /^an entry has an empty name$/],
    [
      'a root "." that is a file',
      Buffer.concat([patch(h, 0, '.\0'), hello, tarPadding(5), TAR_END]),
      {},
      /^the archive's root "\." is not a directory$/,
    ],
    [
      'a name over maxPathBytes',
      named('x'.repeat(11)),
      { maxPathBytes: 10 },
      /^the entry name "x{11}" is 11 bytes, more than the 10 allowed$/,
    ],
    ['a truncated body', Buffer.concat([tarHeader(big), randomBytes(300)]), {}, /^the archive ends in the middle of "big"$/],
    ['a body without its padding', Buffer.concat([tarHeader(big), randomBytes(1000)]), {}, /^the archive ends in the middle of "big"$/],
    ['a truncated header', Buffer.concat([one, h.subarray(0, 300)]), {}, /^the archive ends in the middle of a header \(after "f"\)$/],
    ['a truncated extended header', paxHeader(['path=x']).subarray(0, 520), {}, /^the archive ends in the middle of an extended header$/],
    ['no end marker', one, {}, /^the archive ends without its end marker \(after "f"\)$/],
    ['no entries at all', Buffer.alloc(0), {}, /^the archive ends without its end marker$/],
    [
      'a lone zero block among entries',
      Buffer.concat([one, Buffer.alloc(512), one, TAR_END]),
      {},
      /^a lone zero block at byte 1024 \(after "f"\): the archive is damaged$/,
    ],
    [
      'a size field that is not a number',
      Buffer.concat([patch(h, 124, 'abcdefghijk\0'), TAR_END]),
      {},
      /^the size field of "f" is not a number$/,
    ],
    ['a negative size', Buffer.concat([patch(h, 124, Buffer.alloc(12, 0xff)), TAR_END]), {}, /^the size field of "f" is not a number$/],
    [
      'a mode field that is not a number',
      Buffer.concat([patch(h, 100, '0o644\0\0\0'), TAR_END]),
      {},
      /^the mode field of "f" is not a number$/,
    ],
    [
      'a pax record with a wrong length',
      viaPax('path=abc').fill('9', 512, 513),
      {},
      /^a malformed pax record at byte 0 of an extended header: its length or format is wrong$/,
    ],
    ['a pax record without "="', viaPax('pathabc'), {}, /malformed pax record at byte 0/],
    ['a pax size that is not a number', viaPax('size=5x'), {}, /^the pax size of an extended header is not a number: "5x"$/],
    ['a pax mtime that is not a number', viaPax('mtime=soon'), {}, /^the pax mtime of an extended header is not a number: "soon"$/],
    ['a pax record without a length', viaPax('x').fill('path=abc\n', 512, 521), {}, /malformed pax record at byte 0/],
    ['a pax record one byte short', viaPax('path=abc').fill('1', 513, 514), {}, /malformed pax record at byte 0/],
    [
      'an extended header whose size is not a number',
      Buffer.concat([patch(paxHeader(['path=x']).subarray(0, 512), 124, 'zz'), TAR_END]),
      {},
      /^the size field of an extended header at byte 0 is not a number$/,
    ],
    [
      'a base-256 size beyond 2^53',
      Buffer.concat([patch(h, 124, Buffer.alloc(12, 0x7f).fill(0x80, 0, 1)), TAR_END]),
      {},
      /^the size field of "f" is not a number$/,
    ],
    [
      'a pax header over maxHeaderBytes',
      viaPax(`path=${'x'.repeat(200)}`),
      { maxHeaderBytes: 100 },
      /^an extended header at byte 0 is 210 bytes, more than the 100 allowed$/,
    ],
    [
      'an extended header before the end marker',
      Buffer.concat([one, paxHeader(['path=x']), TAR_END]),
      {},
      /^the end marker at byte 2048 follows an extended header instead of an entry \(after "f"\)$/,
    ],
    [
      'a GNU sparse file',
      viaPax('GNU.sparse.major=1'),
      {},
      /^the archive holds a GNU sparse file, which nsdebug does not read; archive it without --sparse$/,
    ],
    ['more than maxEntries entries', Buffer.concat([one, one, one, TAR_END]), { maxEntries: 2 }, /^the archive has more than 2 entries$/],
  ])('%s', (_, input, limits, message) => {
    expect(tarError(input, limits)).toMatch(message);
  });
});
