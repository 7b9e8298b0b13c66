// `kubectl nsdebug cp` against a fake cluster: which side is the container, the agent's argv,
// the bytes written locally with their mode and mtime, and what happens when a copy falls short.
import { mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { completeCp, remotePath, runCp } from '../../../src/cli/cp.js';
import { Channel } from '../../../src/kube/exec.js';
import { ExitCode, type CopyHeader } from '../../../src/contract.js';
import {
  FakeAgentClient,
  FakeTargetClient,
  FakeTransport,
  ID,
  UID,
  agentCommand,
  failure,
  fakeAgentPod,
  fakePod,
  running,
} from '../kube/fakes.js';
import { fakeCluster, fakeIo } from './fakes.js';

const cluster = (script: ConstructorParameters<typeof FakeTransport>[0]) =>
  fakeCluster({
    targets: new FakeTargetClient([fakePod('web-0', { statuses: [running('app', ID('a'))] })]),
    agents: new FakeAgentClient({ 'node-1': [fakeAgentPod('node-1')] }),
    transport: new FakeTransport(script),
  });

const BYTES = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
const MTIME = Date.UTC(2024, 0, 2, 3, 4, 5);
const header = (size = BYTES.length): CopyHeader => ({ path: '/data/blob', size, mode: 0o640, mtimeMs: MTIME });

describe('which side is in a container', () => {
  test.each([
    ['pod/web-0:/etc/x', { target: 'pod/web-0', path: '/etc/x' }],
    ['web-0:x', { target: 'web-0', path: 'x' }],
    ['deploy/web:/a:b', { target: 'deploy/web', path: '/a:b' }],
    ['./web-0:/x', undefined],
    ['/tmp/a:b', undefined],
    ['plain', undefined],
    ['Not_A_Pod:/x', undefined],
  ])('%s', (arg, expected) => expect(remotePath(arg)).toEqual(expected));

  test.each([
    [{ source: 'a' }, 'name a source and a destination'],
    [{ source: 'a', destination: 'b' }, 'neither a nor b names a container path'],
    [{ source: 'pod/x:/a', destination: 'pod/y:/b' }, 'one of them must be local'],
  ])('%j', (flags, message) => {
    expect(() => completeCp(flags, fakeIo())).toThrow(message);
  });

  test('-n, -c and the target come through', () => {
    const opts = completeCp({ source: 'deploy/web:/x', destination: '.', namespace: 'shop', container: 'app' }, fakeIo());
    expect(opts).toMatchObject({
      target: 'deploy/web',
      container: 'app',
      kube: { namespace: 'shop' },
      download: { remote: '/x', local: '.' },
    });
  });
});

describe('kubectl nsdebug cp TARGET:PATH LOCAL', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'nsdebug-cp-'));

  test('the bytes, mode and mtime land in the local file; into a directory under the remote name', async () => {
    const d = dir();
    const c = cluster((s) => {
      const stream = Buffer.concat([Buffer.from(`${JSON.stringify(header())}\n`), BYTES]);
      // split mid-header and mid-body, as a stream may
      s.serve(Channel.STDOUT, stream.subarray(0, 10));
      s.serve(Channel.STDOUT, stream.subarray(10, 100_000));
      s.serve(Channel.STDOUT, stream.subarray(100_000));
      s.exit(0);
    });
    expect(await runCp({ source: 'web-0:/data/blob', destination: d }, fakeIo(), c)).toBe(0);
    expect(c.transport.command()).toEqual(agentCommand('cp', `--container-id=${ID('a')}`, `--pod-uid=${UID}`, '--from=/data/blob'));
    const file = join(d, 'blob');
    expect(readFileSync(file).equals(BYTES)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(statSync(file).mtimeMs).toBe(MTIME);
    expect(readdirSync(d)).toEqual(['blob']);
  });

  test('"-" writes the bytes to stdout', async () => {
    const io = fakeIo();
    const c = cluster((s) => (s.serve(Channel.STDOUT, `${JSON.stringify(header(5))}\nhello`), s.exit(0)));
    expect(await runCp({ source: 'web-0:/data/blob', destination: '-' }, io, c)).toBe(0);
    expect(io.stdout.text()).toBe('hello');
  });

  test('a copy that falls short leaves nothing behind and says so', async () => {
    const d = dir();
    const c = cluster(
      (s) => (s.serve(Channel.STDOUT, Buffer.concat([Buffer.from(`${JSON.stringify(header())}\n`), BYTES.subarray(0, 1000)])), s.exit(0)),
    );
    expect(await failure(runCp({ source: 'web-0:/data/blob', destination: join(d, 'out') }, fakeIo(), c))).toEqual({
      code: ExitCode.COPY_FAILED,
      message: `the copy of /data/blob ended after 1000 of ${BYTES.length} bytes; ${join(d, 'out')} was not written`,
    });
    expect(readdirSync(d)).toEqual([]);
  });

  test("the agent's refusal in its words, with its exit code; no file", async () => {
    const d = dir();
    const c = cluster((s) => (s.serve(Channel.STDERR, 'nsdebug-agent: /nope: no such file or directory\n'), s.exit(ExitCode.NOT_FOUND)));
    expect(await failure(runCp({ source: 'web-0:/nope', destination: d }, fakeIo(), c))).toEqual({
      code: ExitCode.NOT_FOUND,
      message: 'the agent on node node-1 could not copy /nope out of container app of pod demo/web-0: /nope: no such file or directory',
    });
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('kubectl nsdebug cp LOCAL TARGET:PATH', () => {
  test('sends the file on stdin with its name, size, mode and mtime, then half-closes stdin', async () => {
    const d = mkdtempSync(join(tmpdir(), 'nsdebug-cp-'));
    const local = join(d, 'tool.bin');
    writeFileSync(local, BYTES);
    chmodSync(local, 0o755);
    utimesSync(local, new Date(), new Date(MTIME));
    const c = cluster(async (s) => {
      // answer once the whole file and the v5 close of stdin have come
      while (!s.sent.some((f) => f[0] === Channel.CLOSE)) await new Promise((r) => setTimeout(r, 5));
      s.serve(Channel.STDOUT, `${JSON.stringify({ path: '/scratch/tool.bin', size: BYTES.length })}\n`);
      s.exit(0);
    });
    expect(await runCp({ source: local, destination: 'pod/web-0:/scratch/' }, fakeIo(), c)).toBe(0);
    expect(c.transport.command()).toEqual([
      ...agentCommand('cp', `--container-id=${ID('a')}`, `--pod-uid=${UID}`),
      '--to=/scratch/',
      '--name=tool.bin',
      `--size=${BYTES.length}`,
      '--mode=0755',
      `--mtime=${MTIME}`,
    ]);
    const sent = Buffer.concat(c.transport.socket!.sent.filter((f) => f[0] === Channel.STDIN).map((f) => f.subarray(1)));
    expect(sent.equals(BYTES)).toBe(true);
  });

  test.each([
    ['/no/such/file', ExitCode.NOT_FOUND, '/no/such/file: no such local file'],
    [tmpdir(), ExitCode.COPY_FAILED, `${tmpdir()} is a directory; add -r to copy it and what it holds`],
  ])('%s', async (local, code, message) => {
    expect(
      await failure(
        runCp(
          { source: local, destination: 'web-0:/x' },
          fakeIo(),
          cluster((s) => s.exit(0)),
        ),
      ),
    ).toEqual({ code, message });
  });
});
