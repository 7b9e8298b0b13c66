// Pod picking, container choice (kubectl's rules), container ID and state: src/pod.ts, which the
// CLI's target resolution and the agent's DebugSession check share.
import { ExitCode } from '../../src/contract.js';
import {
  chooseContainer,
  compareActivePods,
  exitedContainer,
  parseContainerId,
  pickPod,
  runningContainer,
  type PodLike,
} from '../../src/pod.js';
import { ID, fakePod, running, thrownBy } from './kube/fakes.js';

describe('picking a pod like kubectl exec deploy/x', () => {
  const t = (min: number) => `2026-01-01T00:${String(min).padStart(2, '0')}:00Z`;
  test.each<[string, PodLike, PodLike]>([
    ['running beats pending', fakePod('b', { phase: 'Running' }), fakePod('a', { phase: 'Pending', ready: false })],
    [
      'scheduled beats unscheduled',
      fakePod('b', { phase: 'Pending', ready: false }),
      fakePod('a', { node: null, phase: 'Pending', ready: false }),
    ],
    ['ready beats not ready', fakePod('b'), fakePod('a', { ready: false })],
    ['ready for longer wins', fakePod('b', { created: t(1) }), fakePod('a', { created: t(5) })],
    [
      'fewer restarts win',
      fakePod('b', { statuses: [running('app', ID('a'), { restartCount: 0 })] }),
      fakePod('a', { statuses: [running('app', ID('a'), { restartCount: 3 })] }),
    ],
  ])('%s', (_, better, worse) => {
    expect(compareActivePods(better, worse)).toBeLessThan(0);
    expect(pickPod([worse, better])?.pod).toBe(better);
  });

  test('a pod being deleted comes last', () => {
    const deleting = fakePod('a');
    deleting.metadata = { ...deleting.metadata, deletionTimestamp: t(9) };
    expect(pickPod([deleting, fakePod('b', { ready: false })])?.pod.metadata?.name).toBe('b');
  });

  test('says which pod it used, as kubectl logs does', () => {
    expect(pickPod([fakePod('web-1'), fakePod('web-2', { created: t(3) })])?.note).toBe('Found 2 pods, using pod/web-1');
    expect(pickPod([fakePod('web-1')])?.note).toBe('Found 1 pod, using pod/web-1');
    expect(pickPod([fakePod('web-1', { ready: false }), fakePod('web-2', { ready: false })])?.note).toBe(
      'Found 2 pods (0 ready; pod/web-1 is not ready), using pod/web-1',
    );
  });

  test('none', () => expect(pickPod([])).toBeUndefined());
});

describe('chooseContainer (kubectl podcmd rules)', () => {
  const multi = fakePod('multi', { containers: ['sidecar', 'app'] });
  test('-c wins', () => expect(chooseContainer(multi, 'app')).toEqual({ name: 'app', kind: 'container' }));
  test('-c finds init and ephemeral containers by name', () => {
    const pod = fakePod('p', { containers: ['app'], init: ['setup'], ephemeral: ['debugger-x'] });
    expect(chooseContainer(pod, 'setup')).toEqual({ name: 'setup', kind: 'init' });
    expect(chooseContainer(pod, 'debugger-x')).toEqual({ name: 'debugger-x', kind: 'ephemeral' });
  });
  test('the default-container annotation, silently', () => {
    const pod = fakePod('multi', { containers: ['sidecar', 'app'], annotations: { 'kubectl.kubernetes.io/default-container': 'app' } });
    expect(chooseContainer(pod)).toEqual({ name: 'app', kind: 'container' });
  });
  test('an annotation naming no container falls back to the first', () => {
    const pod = fakePod('multi', { containers: ['sidecar', 'app'], annotations: { 'kubectl.kubernetes.io/default-container': 'gone' } });
    expect(chooseContainer(pod).name).toBe('sidecar');
  });
  test('the first, with "Defaulted container" when there was a choice', () => {
    expect(chooseContainer(multi)).toEqual({
      name: 'sidecar',
      kind: 'container',
      note: 'Defaulted container "sidecar" out of: sidecar, app',
    });
    const withInit = fakePod('p', { containers: ['app'], init: ['setup'], ephemeral: ['dbg'] });
    expect(chooseContainer(withInit).note).toBe('Defaulted container "app" out of: app, setup (init), dbg (ephem)');
  });
  test('one container: no note', () => expect(chooseContainer(fakePod('p'))).toEqual({ name: 'app', kind: 'container' }));
  test('unknown -c lists the valid names', () => {
    const pod = fakePod('multi', { containers: ['sidecar', 'app'], init: ['setup'] });
    expect(thrownBy(() => chooseContainer(pod, 'nope'))).toEqual({
      code: ExitCode.NOT_FOUND,
      message: 'container "nope" not found in pod demo/multi; valid names: sidecar, app, setup (init)',
    });
  });
});

describe('parseContainerId', () => {
  test.each([
    [`containerd://${ID('a')}`, 'containerd'],
    [`cri-o://${ID('b')}`, 'cri-o'],
    [`docker://${ID('c')}`, 'docker'],
  ])('%s', (raw, runtime) => expect(parseContainerId(raw)).toEqual({ runtime, id: raw.split('://')[1] }));

  test.each([
    [`containerd://${ID('A')}`, ExitCode.INTERNAL, 'malformed containerd ID'],
    ['containerd://abc', ExitCode.INTERNAL, 'expected 64 hex digits'],
    [ID('a'), ExitCode.INTERNAL, 'expected RUNTIME://ID'],
    [`virtlet.cloud://${ID('a')}`, ExitCode.ENTER_FAILED, 'the "virtlet.cloud" runtime, which nsdebug does not support'],
  ])('%s is refused', (raw, code, message) => {
    const f = thrownBy(() => parseContainerId(raw));
    expect(f.code).toBe(code);
    expect(f.message).toContain(message);
  });
});

describe('runningContainer', () => {
  const choice = { name: 'app', kind: 'container' as const };
  test('running: the bare ID', () => {
    expect(runningContainer(fakePod('p', { statuses: [running('app', ID('f'))] }), choice)).toEqual({
      name: 'app',
      kind: 'container',
      runtime: 'containerd',
      containerId: ID('f'),
    });
  });

  test.each<[string, PodLike, string]>([
    [
      'CrashLoopBackOff',
      fakePod('crashloop', {
        statuses: [
          {
            name: 'app',
            restartCount: 5,
            state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 2m40s restarting failed container' } },
            lastState: { terminated: { exitCode: 1, reason: 'Error', finishedAt: '2026-01-01T00:10:00Z' } },
          },
        ],
      }),
      'container app of pod demo/crashloop is not running: waiting (CrashLoopBackOff), last exit code 1 (Error) at 2026-01-01T00:10:00.000Z, restarted 5 times; see `kubectl logs -n demo crashloop -c app --previous`',
    ],
    [
      'terminated',
      fakePod('done', { statuses: [{ name: 'app', restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } }] }),
      'container app of pod demo/done is not running: terminated, exit code 0 (Completed), restarted 0 times; see `kubectl logs -n demo done -c app`',
    ],
    [
      'image pull',
      fakePod('pull', {
        statuses: [
          { name: 'app', restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "x"' } } },
        ],
      }),
      'container app of pod demo/pull is not running: waiting (ImagePullBackOff: Back-off pulling image "x"), restarted 0 times',
    ],
    [
      'no status yet',
      fakePod('new', { statuses: [], phase: 'Pending' }),
      'container app of pod demo/new has not started yet (pod Pending); wait until it runs',
    ],
    [
      'unscheduled',
      fakePod('pending', { node: null, statuses: [], phase: 'Pending' }),
      'pod demo/pending is not scheduled to a node yet; wait until it runs',
    ],
  ])('%s → NOT_RUNNING with the state', (_, pod, message) => {
    const f = thrownBy(() => runningContainer(pod, choice));
    expect(f.code).toBe(ExitCode.NOT_RUNNING);
    expect(f.message).toContain(message);
  });
});

describe('exitedContainer: the last instance of a container that is not running', () => {
  const choice = { name: 'app', kind: 'container' as const };
  test('CrashLoopBackOff: the last terminated instance, its log is --previous', () => {
    const pod = fakePod('crashloop', {
      statuses: [
        {
          name: 'app',
          restartCount: 7,
          state: { waiting: { reason: 'CrashLoopBackOff' } },
          lastState: { terminated: { exitCode: 1, reason: 'Error', containerID: `containerd://${ID('c')}`, message: 'panic:\n  boom' } },
        },
      ],
    });
    expect(exitedContainer(pod, choice)).toEqual({
      name: 'app',
      kind: 'container',
      runtime: 'containerd',
      containerId: ID('c'),
      exited: { summary: 'CrashLoopBackOff, exit code 1, 7 restarts', message: 'panic: boom', previousLog: true, podEnded: false },
    });
  });

  test('Completed in an ended pod: the current instance, its own log, no sandbox left', () => {
    const pod = fakePod('job', {
      phase: 'Succeeded',
      statuses: [
        {
          name: 'app',
          restartCount: 0,
          containerID: `containerd://${ID('d')}`,
          state: { terminated: { exitCode: 0, reason: 'Completed', containerID: `containerd://${ID('d')}` } },
        },
      ],
    });
    expect(exitedContainer(pod, choice)?.exited).toEqual({
      summary: 'Completed, exit code 0, 0 restarts',
      previousLog: false,
      podEnded: true,
    });
    expect(exitedContainer(pod, choice)?.containerId).toBe(ID('d'));
  });

  test.each<[string, PodLike]>([
    ['running', fakePod('p', { statuses: [running('app', ID('f'))] })],
    ['never ran (image pull)', fakePod('p', { statuses: [{ name: 'app', state: { waiting: { reason: 'ErrImagePull' } } }] })],
    ['no status', fakePod('p', { statuses: [] })],
  ])('%s: none, runningContainer explains', (_, pod) => {
    expect(exitedContainer(pod, choice)).toBeUndefined();
  });
});
