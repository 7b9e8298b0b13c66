// Session authorization on the agent's side: what a connection may claim, and when a DebugSession
// is refused (wrong secret, used, expired), before any API request is made.
import {
  CONTRACT_VERSION,
  DEBUG_SESSION_API,
  encodeFrame,
  Frame,
  FrameDecoder,
  MAX_FRAME_PAYLOAD,
  type DebugSessionObject,
} from '../../../src/contract.js';
import { judgeRequesterPolicy, judgeSession, parseHello, requestOf, REQUESTER_POLICY } from '../../../src/agent/debug-session.js';
import { debugSessionAsk, sessionSecretHash, type DebugSessionRequest } from '../../../src/contract.js';
import { ID, UID, fakePod, running } from '../kube/fakes.js';
import { parseResize } from '../../../src/agent/session-relay.js';
import { NsdebugError } from '../../../src/errors.js';

const SECRET = 'ab'.repeat(32);
const CREATED = Date.parse('2026-11-23T10:00:00Z');
const hello = { contract: CONTRACT_VERSION, namespace: 'team-a', name: 'nsdebug-x7k2p', secret: SECRET };

const session = (over: Partial<DebugSessionObject['spec']> = {}, status?: DebugSessionObject['status']): DebugSessionObject => ({
  apiVersion: DEBUG_SESSION_API,
  kind: 'DebugSession',
  metadata: { name: hello.name, namespace: hello.namespace, creationTimestamp: new Date(CREATED).toISOString(), resourceVersion: '7' },
  spec: { requester: 'alice', pod: 'web-0', command: [], secretHash: sessionSecretHash(SECRET), ...over },
  ...(status ? { status } : {}),
});

describe('parseHello', () => {
  test('a well-formed request', () => {
    expect(parseHello(Buffer.from(JSON.stringify(hello)))).toEqual(hello);
  });
  test.each([
    ['not JSON', '{', /not JSON/],
    ['a namespace with a slash', JSON.stringify({ ...hello, namespace: 'a/b' }), /no valid namespace/],
    ['a path as the name', JSON.stringify({ ...hello, name: '../pods/x' }), /no valid DebugSession/],
    ['a short secret', JSON.stringify({ ...hello, secret: 'abc' }), /no valid secret/],
    ['an upper-case secret', JSON.stringify({ ...hello, secret: SECRET.toUpperCase() }), /no valid secret/],
  ])('refuses %s', (_what, text, message) => {
    let error: unknown;
    try {
      parseHello(Buffer.from(text));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(NsdebugError);
    expect((error as NsdebugError).message).toMatch(message);
    expect((error as NsdebugError).exitCode).toBe(66);
  });
});

test('a client of another contract version is refused with exit 68, naming both versions', () => {
  let error: unknown;
  try {
    parseHello(Buffer.from(JSON.stringify({ ...hello, contract: CONTRACT_VERSION - 1 })));
  } catch (err) {
    error = err;
  }
  expect((error as NsdebugError).exitCode).toBe(68);
  expect((error as NsdebugError).message).toMatch(new RegExp(`speaks contract ${CONTRACT_VERSION}, the client ${CONTRACT_VERSION - 1}`));
});

describe('judgeSession', () => {
  test('a fresh, unclaimed session with the right secret is served', () => {
    expect(judgeSession(session(), hello, CREATED + 5000)).toBeUndefined();
  });
  test.each([
    ['another secret', session(), { ...hello, secret: 'cd'.repeat(32) }, CREATED, /secret does not match/],
    ['a claimed session', session({}, { phase: 'Claimed' }), hello, CREATED, /used already \(Claimed\)/],
    ['a session older than 60 s', session(), hello, CREATED + 61_000, /expired/],
    ['no secret hash', session({ secretHash: '' }), hello, CREATED, /no valid secretHash/],
    ['no requester', session({ requester: '' }), hello, CREATED, /no requester/],
  ])('refuses %s', (_what, obj, h, now, message) => {
    expect(judgeSession(obj, h, now)).toMatch(message);
  });
});

describe('session frames', () => {
  test('frames survive any split of the byte stream', () => {
    const stream = Buffer.concat([
      encodeFrame(Frame.HELLO, Buffer.from('{"a":1}')),
      encodeFrame(Frame.STDIN, Buffer.alloc(70_000, 7)),
      encodeFrame(Frame.STDIN_EOF),
    ]);
    for (const step of [1, 3, 4096, stream.length]) {
      const decoder = new FrameDecoder();
      const frames = [];
      for (let at = 0; at < stream.length; at += step) frames.push(...decoder.push(stream.subarray(at, at + step)));
      expect(frames.map((f) => [f.type, f.payload.length])).toEqual([
        [Frame.HELLO, 7],
        [Frame.STDIN, 70_000],
        [Frame.STDIN_EOF, 0],
      ]);
    }
  });
  test('a frame larger than the limit is refused before it is buffered', () => {
    const header = Buffer.from([Frame.STDIN, 0, 0, 0, 0]);
    header.writeUInt32BE(MAX_FRAME_PAYLOAD + 1, 1);
    expect(() => new FrameDecoder().push(header)).toThrow(/larger than/);
  });
  test.each([
    ['{"cols":120,"rows":40}', { cols: 120, rows: 40 }],
    ['{"cols":0,"rows":40}', undefined],
    ['{"cols":1e9,"rows":40}', undefined],
    ['{"cols":"80","rows":24}', undefined],
    ['nonsense', undefined],
  ])('window size %s', (text, size) => {
    expect(parseResize(Buffer.from(text))).toEqual(size);
  });
});

describe('requestOf: what the agent runs is decoded from the DebugSession and the pod as read now', () => {
  const pod = fakePod('web-0', { namespace: 'team-a', statuses: [running('app', ID('a'))] });
  const crashed = fakePod('web-1', {
    namespace: 'team-a',
    statuses: [
      {
        name: 'app',
        restartCount: 2,
        state: { waiting: { reason: 'CrashLoopBackOff' } },
        lastState: { terminated: { exitCode: 1, reason: 'Error', containerID: `containerd://${ID('9')}` } },
      },
    ],
  });
  const spec = (over: Partial<DebugSessionObject['spec']>) => ({ ...session().spec, pod: 'web-0', ...over });

  test('a session: the running container, with what the object asks, in every namespace', () => {
    expect(requestOf(spec({ command: ['ps'], readOnly: true }), pod, 'team-a')).toEqual({
      operation: 'enter',
      containerId: ID('a'),
      podUid: UID,
      pod: 'team-a/web-0',
      container: 'app',
      tools: false,
      tty: false,
      readOnly: true,
      privileged: false,
      postmortem: false,
      command: ['ps'],
    });
  });
  test("a subset of namespaces is refused: the ones left out would be the agent's", () => {
    expect(() => requestOf(spec({ namespaces: ['net'] }), pod, 'team-a')).toThrow(
      /joins every namespace of its target; spec.namespaces is not allowed/,
    );
  });
  test("--privileged is never served through a DebugSession, even one that carries it past the CRD's pruning", () => {
    expect(() => requestOf({ ...spec({}), privileged: true } as DebugSessionObject['spec'], pod, 'team-a')).toThrow(
      "a DebugSession cannot ask for --privileged: the agent's privileges are never served through one",
    );
    expect(requestOf(spec({}), pod, 'team-a')).toMatchObject({ privileged: false });
  });
  test('a crashed container: its last instance, post-mortem', () => {
    expect(requestOf(spec({ pod: 'web-1' }), crashed, 'team-a')).toMatchObject({ postmortem: true, containerId: ID('9') });
  });
  test('--wait: the instance the pod has now is the one to skip, even a dead one', () => {
    expect(requestOf(spec({ pod: 'web-1', waitSeconds: 90 }), crashed, 'team-a')).toEqual({
      operation: 'enter',
      containerId: ID('9'),
      podUid: UID,
      pod: 'team-a/web-1',
      container: 'app',
      tools: false,
      tty: false,
      readOnly: false,
      privileged: false,
      postmortem: false,
      waitSeconds: 90,
      command: [],
    });
  });
  test('the queries', () => {
    expect(requestOf(spec({ operation: 'ps' }), pod, 'team-a')).toEqual({ operation: 'ps', containerId: ID('a'), podUid: UID });
    expect(requestOf(spec({ operation: 'ns' }), crashed, 'team-a')).toEqual({ operation: 'ns', podUid: UID });
    expect(requestOf(spec({ operation: 'cp', copy: { from: '/etc/hosts' } }), pod, 'team-a')).toEqual({
      operation: 'cp',
      containerId: ID('a'),
      podUid: UID,
      from: '/etc/hosts',
    });
  });
  test('the two encodings carry one request: what the CLI asks is what the agent decodes', () => {
    const asked: DebugSessionRequest[] = [
      {
        operation: 'enter',
        containerId: ID('a'),
        podUid: UID,
        pod: 'team-a/web-0',
        container: 'app',
        tools: true,
        tty: true,
        readOnly: true,
        privileged: false,
        postmortem: false,
        process: 7,
        command: ['top'],
      },
      { operation: 'ps', containerId: ID('a'), podUid: UID },
      { operation: 'cp', containerId: ID('a'), podUid: UID, to: '/tmp', name: 'x', size: 3, mode: 0o644, mtimeMs: 5 },
    ];
    for (const req of asked) {
      const ask = debugSessionAsk(req, { pod: 'web-0', container: 'app' });
      expect(requestOf({ ...ask, requester: 'alice', secretHash: 'ab' }, pod, 'team-a')).toEqual(req);
    }
  });
  test('a request the validator refuses is refused through a DebugSession too', () => {
    expect(() => requestOf(spec({ command: ['cat', 'a\0b'] }), pod, 'team-a')).toThrow(/without NUL bytes/);
    expect(() =>
      requestOf(spec({ operation: 'cp', copy: { to: '/tmp', name: '..', size: 1, mode: 0o644, mtimeMs: 1 } }), pod, 'team-a'),
    ).toThrow(/--name must be a file name/);
  });
  test.each([
    ['an unknown operation', spec({ operation: 'exec' as never }), /operation "exec" is not one of enter, ps, ns, cp/],
    ['cp without a file', spec({ operation: 'cp' }), /needs spec.copy/],
  ])('refuses %s', (_what, s, message) => {
    expect(() => requestOf(s, pod, 'team-a')).toThrow(message);
  });
  test('ps of a container that is not running says so', () => {
    expect(() => requestOf(spec({ operation: 'ps', pod: 'web-1' }), crashed, 'team-a')).toThrow(/is not running/);
  });
});

describe('judgeRequesterPolicy: no DebugSession is served unless admission pins its requester', () => {
  const policy = (expression = 'object.spec.requester == request.userInfo.username') => ({
    status: 200,
    body: { spec: { validations: [{ expression }, { expression: '!has(object.spec.namespaces)' }] } },
  });
  const binding = (over: object = {}) => ({
    status: 200,
    body: { spec: { policyName: REQUESTER_POLICY, validationActions: ['Deny'], ...over } },
  });
  const gone = { status: 404, body: {} };

  test('the shipped policy and binding', () => expect(judgeRequesterPolicy(policy(), binding())).toBeUndefined());
  test.each([
    ['no policy', gone, binding(), /policy is missing\); DebugSessions are not served until .*install --session-auth/],
    ['no binding', policy(), gone, /binding is missing/],
    ['a policy that checks something else', policy('true'), binding(), /no longer checks spec.requester/],
    ['a binding that only warns', policy(), binding({ validationActions: ['Warn'] }), /does not deny/],
    ['a binding of another policy', policy(), binding({ policyName: 'other' }), /does not deny/],
  ])('refuses with %s', (_what, p, b, message) => expect(judgeRequesterPolicy(p, b)).toMatch(message));
});
