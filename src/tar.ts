// The `cp -r` wire format, both halves: a POSIX tar stream (ustar headers, with a pax extended
// header where ustar falls short). The agent writes one from a container's tree and the CLI reads
// it, or the reverse; the reader also takes what GNU tar and busybox write (pax, GNU, v7). The
// container controls every name, link target and size in it, so the reader checks each header
// (checksum, numbers, pax record lengths), refuses names that could leave the destination, bounds
// what it buffers (one header block, one extended header) and resolves nothing. Imports nothing.

export type TarEntry =
  | { type: 'directory'; path: string; mode: number; mtimeMs: number }
  | { type: 'file'; path: string; mode: number; mtimeMs: number; size: number }
  | { type: 'symlink'; path: string; target: string; mode: number; mtimeMs: number }
  /** read only: an entry nsdebug does not create (hard link, FIFO, device, socket, …); its data (if any) is skipped by the parser */
  | { type: 'other'; path: string; kind: string };

/** A malformed or unsafe archive: one line that says what is wrong and, when known, in which entry. */
export class TarError extends Error {
  name = 'TarError';
}

const BLOCK = 512;
/** the largest number 11 octal digits (a size or mtime field) hold: 8 GiB - 1 */
const OCTAL_MAX = 0o77777777777;
// fatal: a name that is not UTF-8 is refused rather than replaced, so that every accepted path
// round-trips and two different names cannot decode to one; ignoreBOM keeps a leading U+FEFF.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const quote = (s: string) => JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s);
const isAscii = (s: string) => Buffer.byteLength(s) === s.length;

/**
 * The 512-byte header block(s) for entry: a pax 'x' extended header first when ustar cannot hold
 * its path, link target, size or mtime exactly. mode is written & 0o7777.
 */
export function tarHeader(entry: Exclude<TarEntry, { type: 'other' }>): Buffer {
  const name = entry.path === '.' ? './' : entry.type === 'directory' ? `${entry.path}/` : entry.path;
  const nameBytes = Buffer.from(name);
  const target = entry.type === 'symlink' ? entry.target : '';
  const size = entry.type === 'file' ? entry.size : 0;
  const seconds = Math.floor(entry.mtimeMs / 1000);
  const split = ustarSplit(nameBytes);
  const pax: string[] = [];
  if (!split || !isAscii(name)) pax.push(paxRecord('path', name));
  if (Buffer.byteLength(target) > 100 || !isAscii(target)) pax.push(paxRecord('linkpath', target));
  if (size > OCTAL_MAX) pax.push(paxRecord('size', String(size)));
  const mtimeFits = seconds >= 0 && seconds <= OCTAL_MAX;
  if (seconds * 1000 !== entry.mtimeMs || !mtimeFits) pax.push(paxRecord('mtime', paxTime(entry.mtimeMs)));
  const mtime = mtimeFits ? seconds : 0;
  const header = ustarBlock({
    // a name ustar cannot hold is in the pax header; the field keeps what fits, for old readers
    name: split?.[1] ?? nameBytes,
    prefix: split?.[0],
    mode: entry.mode & 0o7777,
    size: size > OCTAL_MAX ? 0 : size,
    mtime,
    type: { file: '0', directory: '5', symlink: '2' }[entry.type],
    link: Buffer.from(target),
  });
  if (!pax.length) return header;
  const data = Buffer.from(pax.join(''));
  const paxHeader = ustarBlock({ name: Buffer.from('PaxHeader'), mode: 0o644, size: data.length, mtime, type: 'x' });
  return Buffer.concat([paxHeader, data, tarPadding(data.length), header]);
}

/** Zero bytes padding a body of `size` bytes to a multiple of 512 (possibly none). */
export const tarPadding = (size: number) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

/** The end-of-archive marker: two zero blocks. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

/** [prefix, name] for ustar's two name fields (joined by a '/'), or undefined if the name cannot be split so. */
function ustarSplit(name: Buffer): [Buffer, Buffer] | undefined {
  if (name.length <= 100) return [name.subarray(0, 0), name];
  // the '/' must leave at most 155 bytes before it and 1 to 100 after it
  for (let i = name.length - 101; i <= Math.min(155, name.length - 2); i++) {
    if (name[i] === 0x2f) return [name.subarray(0, i), name.subarray(i + 1)];
  }
  return undefined;
}

function ustarBlock(h: { name: Buffer; prefix?: Buffer; mode: number; size: number; mtime: number; type: string; link?: Buffer }): Buffer {
  const b = Buffer.alloc(BLOCK);
  const octal = (offset: number, length: number, value: number) =>
    b.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, 'latin1');
  h.name.copy(b, 0, 0, 100);
  octal(100, 8, h.mode);
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  octal(124, 12, h.size);
  octal(136, 12, h.mtime);
  b.write(h.type, 156, 'latin1');
  h.link?.copy(b, 157, 0, 100);
  b.write('ustar\x0000', 257, 'latin1');
  octal(329, 8, 0); // devmajor
  octal(337, 8, 0); // devminor
  h.prefix?.copy(b, 345, 0, 155);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

/** "LEN key=value\n", LEN counting the whole record, its own digits included. */
function paxRecord(key: string, value: string): string {
  const rest = Buffer.byteLength(` ${key}=${value}\n`);
  let length = rest;
  while (length !== rest + String(length).length) length = rest + String(length).length;
  return `${length} ${key}=${value}\n`;
}

/** Milliseconds as pax writes time: decimal seconds, to the nanosecond. */
function paxTime(ms: number): string {
  const abs = Math.abs(ms);
  let seconds = Math.floor(abs / 1000);
  let ns = Math.round((abs - seconds * 1000) * 1e6);
  if (ns >= 1e9) [seconds, ns] = [seconds + 1, ns - 1e9];
  const fraction = ns ? `.${String(ns).padStart(9, '0').replace(/0+$/, '')}` : '';
  return `${ms < 0 ? '-' : ''}${seconds}${fraction}`;
}

export type TarEvent =
  | { kind: 'entry'; entry: TarEntry }
  /** body bytes of the last 'file' entry, in order, never beyond its size */
  | { kind: 'data'; chunk: Buffer }
  /** the end-of-archive marker was read */
  | { kind: 'end' };

/** What pax and GNU long-name headers say about the next entry. */
interface Overrides {
  path?: string;
  linkpath?: string;
  size?: number;
  mtime?: number; // ms
}

/** Why cp leaves an entry out, after its kind in words. */
export const NOT_COPIED = '(cp copies regular files, directories and symbolic links)';

/** What a file that is neither a regular file, a directory nor a symlink is, in words. */
export const specialKind = (stat: { isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }) =>
  stat.isFIFO()
    ? 'a FIFO'
    : stat.isSocket()
      ? 'a socket'
      : stat.isCharacterDevice()
        ? 'a character device'
        : stat.isBlockDevice()
          ? 'a block device'
          : 'a special file';

const KINDS: Record<string, string> = { '1': 'a hard link', '3': 'a character device', '4': 'a block device', '6': 'a FIFO' };

/** A push parser of a tar stream: feed it chunks of any size, get events synchronously. */
export class TarParser {
  private readonly maxEntries: number;
  private readonly maxPathBytes: number;
  private readonly maxHeaderBytes: number;
  private readonly block = Buffer.alloc(BLOCK); // a header split across chunks
  private filled = 0;
  private data = 0; // body bytes of the current file still to pass on
  private skip = 0; // bytes to discard: padding, or the body of an entry not passed on
  private meta?: { type: string; body: Buffer; filled: number }; // an extended header being collected
  private next?: Overrides; // set once an extended header precedes the next entry
  private zeroBlock = false; // the last block read was all zeros
  private entries = 0;
  private offset = 0; // bytes read, for messages
  private blockAt = 0; // where the header block being read starts
  private last = ''; // the last entry's path, for messages
  private reading = ''; // what the bytes being read belong to, for messages
  private done = false;

  constructor(limits: { maxEntries?: number; maxPathBytes?: number; maxHeaderBytes?: number } = {}) {
    this.maxEntries = limits.maxEntries ?? 1_000_000;
    this.maxPathBytes = limits.maxPathBytes ?? 4096;
    this.maxHeaderBytes = limits.maxHeaderBytes ?? 1 << 20;
  }

  get ended(): boolean {
    return this.done;
  }

  /** Throws TarError on malformed input. After the end marker the rest is ignored: writers pad to a record size with zeros. */
  push(chunk: Buffer): TarEvent[] {
    const events: TarEvent[] = [];
    let pos = 0;
    while (pos < chunk.length && !this.done) {
      const available = chunk.length - pos;
      let n: number;
      if (this.data > 0) {
        n = Math.min(this.data, available);
        events.push({ kind: 'data', chunk: chunk.subarray(pos, pos + n) });
        this.data -= n;
      } else if (this.meta) {
        const meta = this.meta;
        n = Math.min(meta.body.length - meta.filled, available);
        meta.filled += chunk.copy(meta.body, meta.filled, pos, pos + n);
        if (meta.filled === meta.body.length) this.extended(meta.type, meta.body);
      } else if (this.skip > 0) {
        n = Math.min(this.skip, available);
        this.skip -= n;
      } else if (this.filled === 0 && available >= BLOCK) {
        n = BLOCK;
        this.blockAt = this.offset;
        this.header(chunk.subarray(pos, pos + BLOCK), events);
      } else {
        if (this.filled === 0) this.blockAt = this.offset;
        n = Math.min(BLOCK - this.filled, available);
        this.filled += chunk.copy(this.block, this.filled, pos, pos + n);
        if (this.filled === BLOCK) {
          this.filled = 0;
          this.header(this.block, events);
        }
      }
      pos += n;
      this.offset += n;
    }
    return events;
  }

  /** The input ended: throws TarError unless it ended at the end marker (or after one zero block of it). */
  finish(): TarEvent[] {
    if (this.done) return [];
    if (this.data || this.meta || this.skip) throw new TarError(`the archive ends in the middle of ${this.reading}`);
    const after = this.after();
    if (this.filled) throw new TarError(`the archive ends in the middle of a header${after}`);
    if (!this.zeroBlock) throw new TarError(`the archive ends without its end marker${after}`);
    this.done = true;
    return [{ kind: 'end' }];
  }

  /** Where in the archive, for messages. */
  private after(): string {
    return this.last ? ` (after ${quote(this.last)})` : '';
  }

  private header(b: Buffer, events: TarEvent[]): void {
    const at = this.blockAt;
    const after = this.after();
    if (b.every((byte) => byte === 0)) {
      if (this.next) throw new TarError(`the end marker at byte ${at} follows an extended header instead of an entry${after}`);
      if (this.zeroBlock) {
        this.done = true;
        events.push({ kind: 'end' });
      }
      this.zeroBlock = true;
      return;
    }
    if (this.zeroBlock) throw new TarError(`a lone zero block at byte ${at - BLOCK}${after}: the archive is damaged`);
    if (!checksumOk(b)) throw new TarError(`bad header checksum at byte ${at}${after}: the archive is damaged or not a tar archive`);

    const type = String.fromCharCode(b[156]);
    if ('xgLK'.includes(type)) {
      const size = numeric(b.subarray(124, 136));
      if (size === undefined || size < 0) throw new TarError(`the size field of an extended header at byte ${at} is not a number`);
      if (size > this.maxHeaderBytes) {
        throw new TarError(`an extended header at byte ${at}${after} is ${size} bytes, more than the ${this.maxHeaderBytes} allowed`);
      }
      this.reading = `an extended header${after}`;
      this.meta = { type, body: Buffer.alloc(size), filled: 0 };
      this.skip = tarPadding(size).length;
      if (size === 0) this.extended(type, this.meta.body);
      return;
    }

    if (++this.entries > this.maxEntries) throw new TarError(`the archive has more than ${this.maxEntries} entries`);
    const where = `the header at byte ${at}${after}`;
    const next = this.next ?? {};
    this.next = undefined;
    // A field an extended header replaces is not read: writers leave a truncated name there. GNU
    // headers (magic "ustar  \0") keep times where ustar has its prefix; v7 ones have neither.
    const prefix = b.toString('latin1', 257, 263) === 'ustar\0' ? b.subarray(345, 500) : undefined;
    const raw = next.path ?? [prefix && text(prefix, where), text(b.subarray(0, 100), where)].filter(Boolean).join('/');
    const path = this.entryPath(raw);
    const field = (offset: number, length: number, what: string) => {
      const value = numeric(b.subarray(offset, offset + length));
      if (value === undefined || (what === 'size' && value < 0)) throw new TarError(`the ${what} field of ${quote(raw)} is not a number`);
      return value;
    };
    const size = next.size ?? field(124, 12, 'size');
    const mode = field(100, 8, 'mode') & 0o7777;
    const mtimeMs = next.mtime ?? field(136, 12, 'mtime') * 1000;
    this.last = path;
    this.reading = quote(path);

    // old writers (v7) mark a directory by the trailing '/' of a regular file's name
    const regular = type === '0' || type === '\0' || type === '7';
    let entry: TarEntry;
    if (regular && !raw.endsWith('/')) entry = { type: 'file', path, mode, mtimeMs, size };
    else if (type === '5' || regular) entry = { type: 'directory', path, mode, mtimeMs };
    else if (type === '2') {
      const link = next.linkpath ?? text(b.subarray(157, 257), where);
      if (link.includes('\0')) throw new TarError(`the link target of ${quote(path)} contains a NUL byte`);
      entry = { type: 'symlink', path, target: link, mode, mtimeMs };
    } else entry = { type: 'other', path, kind: KINDS[type] ?? `an entry of type ${JSON.stringify(type)}` };
    if (path === '.' && entry.type !== 'directory') throw new TarError(`the archive's root "." is not a directory`);
    events.push({ kind: 'entry', entry });
    // A directory's size is at most a space hint (POSIX), with no data after it, as GNU tar reads
    // it; the body of any other type (a hard link's, with pax linkdata) is skipped whole.
    const body = type === '5' ? 0 : size;
    if (entry.type === 'file') this.data = body;
    this.skip = (entry.type === 'file' ? 0 : body) + tarPadding(body).length;
  }

  /** A complete pax ('x', 'g') or GNU long name ('L', 'K') header body. */
  private extended(type: string, body: Buffer): void {
    this.meta = undefined;
    if (type === 'L' || type === 'K') {
      let end = body.length;
      while (end > 0 && body[end - 1] === 0) end--;
      (this.next ??= {})[type === 'L' ? 'path' : 'linkpath'] = decode(body.subarray(0, end), this.reading);
      return;
    }
    // a global header ('g') only sets defaults, such as a charset, that nsdebug does not use
    const next = type === 'x' ? (this.next ??= {}) : undefined;
    for (let pos = 0; pos < body.length;) {
      const space = body.indexOf(0x20, pos);
      const digits = space < 0 ? '' : body.toString('latin1', pos, space);
      const end = pos + Number(digits);
      const equals = body.indexOf(0x3d, space);
      if (!/^[1-9]\d{0,8}$/.test(digits) || end > body.length || body[end - 1] !== 0x0a || equals < 0 || equals >= end) {
        throw new TarError(`a malformed pax record at byte ${pos} of ${this.reading}: its length or format is wrong`);
      }
      const key = body.toString('latin1', space + 1, equals);
      const value = body.subarray(equals + 1, end - 1);
      pos = end;
      if (!next) continue;
      if (key.startsWith('GNU.sparse.'))
        throw new TarError(`the archive holds a GNU sparse file${this.after()}, which nsdebug does not read; archive it without --sparse`);
      if (key !== 'path' && key !== 'linkpath' && key !== 'size' && key !== 'mtime') continue;
      // an empty value cancels the key: the entry's own header field counts again
      if (!value.length) delete next[key];
      else if (key === 'path' || key === 'linkpath') next[key] = decode(value, this.reading);
      else next[key] = (key === 'size' ? paxSize : paxMtime)(value.toString('latin1'), this.reading);
    }
  }

  /** The entry's path, normalised ("./a//b/" → "a/b", "./" → "."), or a TarError if it could lead out of the destination. */
  private entryPath(raw: string): string {
    if (raw === '') throw new TarError(`an entry${this.after()} has an empty name`);
    if (raw.includes('\0')) throw new TarError(`the entry name ${quote(raw)} contains a NUL byte`);
    if (raw.startsWith('/')) throw new TarError(`the entry name ${quote(raw)} is absolute; an archive may hold only relative names`);
    const parts = raw.split('/').filter((part) => part !== '' && part !== '.');
    if (parts.includes('..'))
      throw new TarError(`the entry name ${quote(raw)} has a ".." component, which could lead out of the destination`);
    const path = parts.join('/') || '.';
    const bytes = Buffer.byteLength(path);
    if (bytes > this.maxPathBytes)
      throw new TarError(`the entry name ${quote(path)} is ${bytes} bytes, more than the ${this.maxPathBytes} allowed`);
    return path;
  }
}

/** The header's checksum field matches its bytes (the field counted as spaces): summed unsigned, or signed as some old tars did. */
function checksumOk(b: Buffer): boolean {
  const stored = numeric(b.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : b[i];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

/** A numeric field: octal digits (padded with spaces, ended by a NUL or space, or not ended), or GNU base-256 if the high bit is set. */
function numeric(field: Buffer): number | undefined {
  let value: number;
  if (field[0] & 0x80) {
    // two's complement, big-endian, in the bits after the flag bit
    value = (field[0] & 0x7f) - (field[0] & 0x40 ? 0x80 : 0);
    for (const byte of field.subarray(1)) value = value * 256 + byte;
  } else {
    const s = field.toString('latin1');
    const digits = s.slice(0, s.includes('\0') ? s.indexOf('\0') : undefined).trim();
    if (!/^[0-7]*$/.test(digits)) return undefined;
    value = digits ? parseInt(digits, 8) : 0;
  }
  return Number.isSafeInteger(value) ? value : undefined;
}

/** A string field, up to its first NUL. */
function text(field: Buffer, where: string): string {
  const end = field.indexOf(0);
  return decode(end < 0 ? field : field.subarray(0, end), where);
}

function decode(bytes: Buffer, where: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new TarError(`a name or link target in ${where} is not valid UTF-8: ${quote(bytes.toString('utf8'))}`);
  }
}

function paxSize(value: string, where: string): number {
  const size = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(size)) throw new TarError(`the pax size of ${where} is not a number: ${quote(value)}`);
  return size;
}

/** pax decimal seconds as milliseconds, computed as Node computes a stat's mtimeMs (seconds * 1e3 + ns / 1e6). */
function paxMtime(value: string, where: string): number {
  const [, sign, seconds, fraction] = /^(-?)(\d+)(?:\.(\d+))?$/.exec(value) ?? [];
  if (!seconds || !Number.isSafeInteger(Number(seconds) * 1000))
    throw new TarError(`the pax mtime of ${where} is not a number: ${quote(value)}`);
  const ms = Number(seconds) * 1e3 + Number((fraction ?? '').padEnd(9, '0').slice(0, 9)) / 1e6;
  return sign ? -ms : ms;
}
