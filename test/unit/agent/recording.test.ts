// Recording on real temporary directories: the DaemonSet's environment read strictly, a TTY
// session as asciicast v2 (output, resizes, input only when asked, a UTF-8 character split across
// chunks kept whole), a session without a TTY as argv, byte counts and exit code, the directory's
// cap kept by removing the oldest recordings, and one recording's own cap.
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { readRecording, recordingPolicy, rotate, startRecording, type RecordingPolicy } from '../../../src/agent/recording.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nsdebug-rec-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const policy = (over: Partial<RecordingPolicy> = {}): RecordingPolicy => ({
  to: 'hostpath',
  dir,
  maxBytes: 8 << 20,
  input: false,
  scope: 'all',
  ...over,
});
const tty = { containerId: 'c'.repeat(64), pod: 'shop/web-0', container: 'app', tools: false, tty: true, command: [] as string[] };
const logged: unknown[] = [];
const ctx = (id: string, req = tty) => ({
  id,
  req,
  started: new Date(Date.now() - 1000),
  log: (_l: 'info' | 'warn', msg: string, f: Record<string, unknown>) => void logged.push({ msg, ...f }),
});
const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as unknown);

test('the environment: off unless NSDEBUG_RECORD says hostpath or log; anything else refused', () => {
  expect(recordingPolicy({})).toBeUndefined();
  expect(recordingPolicy({ NSDEBUG_RECORD: 'off' })).toBeUndefined();
  expect(
    recordingPolicy({ NSDEBUG_RECORD: 'hostpath', NSDEBUG_RECORD_DIR: '/r', NSDEBUG_RECORD_INPUT: '1', NSDEBUG_RECORD_SCOPE: 'labelled' }),
  ).toEqual({
    to: 'hostpath',
    dir: '/r',
    maxBytes: 1 << 30,
    input: true,
    scope: 'labelled',
  });
  expect(() => recordingPolicy({ NSDEBUG_RECORD: 's3' })).toThrow('NSDEBUG_RECORD must be off, hostpath or log, not "s3"');
  expect(() => recordingPolicy({ NSDEBUG_RECORD: 'log', NSDEBUG_RECORD_MAX_BYTES: '12' })).toThrow('at least 1 MiB');
});

test('a TTY session as asciicast v2: a header, output and resizes timed, input only when asked, a split UTF-8 character whole', () => {
  const rec = startRecording(policy(), ctx('aaaaaaaaaa'));
  const euro = Buffer.from('€');
  rec.resize(30, 100);
  rec.output(Buffer.concat([Buffer.from('price '), euro.subarray(0, 1)]));
  rec.output(euro.subarray(1));
  rec.input(Buffer.from('secret\r'));
  rec.finish(0);
  const [header, ...events] = lines(join(dir, 'aaaaaaaaaa.cast')) as [Record<string, unknown>, ...Array<[number, string, string]>];
  expect(header).toMatchObject({ version: 2, title: 'nsdebug session aaaaaaaaaa: shop/web-0:app', command: 'sh' });
  expect(events.map(([, type, data]) => [type, data])).toEqual([
    ['r', '100x30'],
    ['o', 'price '],
    ['o', '€'],
  ]);
  expect(events.every(([t]) => t >= 1 && t < 60)).toBe(true);

  const withInput = startRecording(policy({ input: true }), ctx('bbbbbbbbbb'));
  withInput.input(Buffer.from('ls\r'));
  withInput.finish(0);
  expect((lines(join(dir, 'bbbbbbbbbb.cast')) as Array<unknown[]>).slice(1).map((e) => e.slice(1))).toEqual([['i', 'ls\r']]);
});

test('a session without a TTY: its argv, byte counts and exit code', () => {
  const rec = startRecording(policy(), ctx('cccccccccc', { ...tty, tty: false, command: ['cat', '/etc/hosts'] }));
  rec.input(Buffer.alloc(3));
  rec.output(Buffer.alloc(10));
  rec.errors(Buffer.alloc(2));
  rec.finish(1);
  expect(lines(join(dir, 'cccccccccc.json'))).toEqual([
    expect.objectContaining({
      session: 'cccccccccc',
      target: 'shop/web-0:app',
      argv: ['cat', '/etc/hosts'],
      bytes: { stdin: 3, stdout: 10, stderr: 2 },
      exitCode: 1,
    }),
  ]);
  expect(readRecording(policy(), 'cccccccccc').toString()).toContain('"exitCode":1');
  expect(() => readRecording(policy(), 'dddddddddd')).toThrow('no recording of session dddddddddd on this node');
  expect(() => readRecording(undefined, 'dddddddddd')).toThrow('this agent does not record sessions');
});

test('the directory keeps below its cap: the oldest recordings go first; other files are left alone', () => {
  const file = (name: string, size: number, age: number) => {
    writeFileSync(join(dir, name), Buffer.alloc(size));
    const t = new Date(Date.now() - age * 1000);
    utimesSync(join(dir, name), t, t);
  };
  file('1111111111.cast', 400, 30);
  file('2222222222.json', 400, 20);
  file('3333333333.cast', 400, 10);
  file('notes.txt', 5000, 40);
  expect(rotate(dir, 800)).toEqual(['1111111111.cast']);
  expect(readdirSync(dir).sort()).toEqual(['2222222222.json', '3333333333.cast', 'notes.txt']);
});

test('one recording stops at its share of the cap, with a warning; the session goes on', () => {
  const rec = startRecording(policy({ maxBytes: 4 << 20 }), ctx('eeeeeeeeee'));
  for (let i = 0; i < 20; i++) rec.output(Buffer.alloc(100_000, 0x61));
  rec.finish(0);
  expect(readFileSync(join(dir, 'eeeeeeeeee.cast')).length).toBeLessThanOrEqual(1 << 20);
  expect(logged).toContainEqual(expect.objectContaining({ session: 'eeeeeeeeee', msg: expect.stringContaining('reached its cap') }));
});

test('to the log: each line a JSON object naming the recording', () => {
  const out: unknown[] = [];
  const rec = startRecording(policy({ to: 'log' }), { ...ctx('ffffffffff'), log: (_l, msg, f) => void out.push({ msg, ...f }) });
  rec.output(Buffer.from('hi'));
  rec.finish(0);
  expect(out).toEqual([
    { msg: 'recording', recording: 'ffffffffff.cast', line: expect.objectContaining({ version: 2 }) },
    { msg: 'recording', recording: 'ffffffffff.cast', line: [expect.any(Number), 'o', 'hi'] },
  ]);
});
