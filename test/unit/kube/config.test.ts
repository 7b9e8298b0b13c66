// kubeconfig as kubectl reads it (files, merge order, context, namespace, timeout) and API
// failures as sentences.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ApiException } from '@kubernetes/client-node';

import { ExitCode } from '../../../src/contract.js';
import { NsdebugError } from '../../../src/errors.js';
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  describeApiError,
  kubeconfigFiles,
  loadKubeConfig,
  mergeKubeConfigs,
  parseRequestTimeout,
  type KubeConfigOptions,
} from '../../../src/kube/config.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nsdebug-kubeconfig-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfig(
  name: string,
  doc: { clusters?: Array<[string, string]>; users?: string[]; contexts?: Array<[string, string, string, string?]>; current?: string },
): string {
  const path = join(dir, name);
  const lines = ['apiVersion: v1', 'kind: Config', 'clusters:'];
  for (const [n, server] of doc.clusters ?? []) lines.push(`- name: ${n}`, `  cluster: {server: "${server}"}`);
  lines.push('users:');
  for (const u of doc.users ?? []) lines.push(`- name: ${u}`, `  user: {token: t-${u}}`);
  lines.push('contexts:');
  for (const [n, cluster, user, ns] of doc.contexts ?? [])
    lines.push(`- name: ${n}`, `  context: {cluster: ${cluster}, user: ${user}${ns ? `, namespace: ${ns}` : ''}}`);
  if (doc.current) lines.push(`current-context: ${doc.current}`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function loadFailure(opts: KubeConfigOptions): Promise<{ code: number; message: string }> {
  try {
    await loadKubeConfig(opts);
  } catch (err) {
    if (err instanceof NsdebugError) return { code: err.exitCode, message: err.message };
    throw err;
  }
  throw new Error('loaded');
}

const noEnv = { env: {}, home: '/nonexistent-home' };

describe('kubeconfigFiles', () => {
  test('--kubeconfig alone', () =>
    expect(kubeconfigFiles({ kubeconfig: '/a', env: { KUBECONFIG: '/b:/c' } })).toEqual({ files: ['/a'], explicit: true }));
  test('KUBECONFIG list, deduplicated, empty entries skipped', () =>
    expect(kubeconfigFiles({ env: { KUBECONFIG: '/b::/c:/b' } })).toEqual({ files: ['/b', '/c'], explicit: false }));
  test('~/.kube/config', () =>
    expect(kubeconfigFiles({ env: {}, home: '/home/u' })).toEqual({ files: ['/home/u/.kube/config'], explicit: false }));
});

describe('mergeKubeConfigs: the first file to set a name or current-context wins', () => {
  test('kubectl merge order', () => {
    const merged = mergeKubeConfigs([
      { clusters: [{ name: 'a', v: 1 }], users: [], contexts: [{ name: 'x', v: 1 }], currentContext: '' },
      {
        clusters: [
          { name: 'a', v: 2 },
          { name: 'b', v: 2 },
        ],
        users: [{ name: 'u' }],
        contexts: [{ name: 'x', v: 2 }],
        currentContext: 'x',
      },
      { clusters: [], users: [], contexts: [], currentContext: 'y' },
    ]);
    expect(merged.clusters).toEqual([
      { name: 'a', v: 1 },
      { name: 'b', v: 2 },
    ]);
    expect(merged.contexts).toEqual([{ name: 'x', v: 1 }]);
    expect(merged.currentContext).toBe('x');
  });
});

describe('loadKubeConfig', () => {
  test("namespace: -n, else the context's, else default", async () => {
    const path = kubeconfig('ns', {
      clusters: [['c', 'https://c:6443']],
      users: ['u'],
      contexts: [
        ['with', 'c', 'u', 'shop'],
        ['without', 'c', 'u'],
      ],
      current: 'with',
    });
    expect((await loadKubeConfig({ kubeconfig: path, ...noEnv })).namespace).toBe('shop');
    expect((await loadKubeConfig({ kubeconfig: path, namespace: 'other', ...noEnv })).namespace).toBe('other');
    const without = await loadKubeConfig({ kubeconfig: path, context: 'without', ...noEnv });
    expect([without.namespace, without.context, without.server, without.user, without.namespaceFromFlag]).toEqual([
      'default',
      'without',
      'https://c:6443',
      'u',
      false,
    ]);
  });

  test('KUBECONFIG files merge; missing ones are skipped', async () => {
    const first = kubeconfig('first', { clusters: [['c', 'https://first:6443']], users: ['u'], contexts: [['x', 'c', 'u']] });
    const second = kubeconfig('second', {
      clusters: [
        ['c', 'https://second:6443'],
        ['d', 'https://d:6443'],
      ],
      users: ['u'],
      contexts: [['y', 'd', 'u', 'ns2']],
      current: 'x',
    });
    const conn = await loadKubeConfig({ env: { KUBECONFIG: [join(dir, 'missing'), first, second].join(':') }, home: '/nonexistent' });
    expect([conn.context, conn.server, conn.sources]).toEqual(['x', 'https://first:6443', [first, second]]);
    expect((await loadKubeConfig({ env: { KUBECONFIG: `${first}:${second}` }, context: 'y' })).namespace).toBe('ns2');
  });

  test('--request-timeout, default 30s', async () => {
    const path = kubeconfig('t', { clusters: [['c', 'https://c:6443']], users: ['u'], contexts: [['x', 'c', 'u']], current: 'x' });
    expect((await loadKubeConfig({ kubeconfig: path, ...noEnv })).requestTimeoutMs).toBe(DEFAULT_REQUEST_TIMEOUT_MS);
    expect((await loadKubeConfig({ kubeconfig: path, requestTimeout: '0', ...noEnv })).requestTimeoutMs).toBe(0);
    expect((await loadKubeConfig({ kubeconfig: path, requestTimeout: '1m30s', ...noEnv })).requestTimeoutMs).toBe(90_000);
  });

  test.each<[string, () => KubeConfigOptions, string]>([
    [
      '--kubeconfig missing',
      () => ({ kubeconfig: '/nonexistent/config', ...noEnv }),
      'cannot read kubeconfig /nonexistent/config: no such file; pass an existing file to --kubeconfig',
    ],
    [
      'nothing anywhere',
      () => ({ env: {}, home: '/nonexistent-home' }),
      'no kubeconfig found (looked in /nonexistent-home/.kube/config); set KUBECONFIG or pass --kubeconfig',
    ],
    [
      'unknown --context',
      () => ({
        kubeconfig: kubeconfig('ctx', {
          clusters: [['c', 'https://c']],
          users: ['u'],
          contexts: [
            ['a', 'c', 'u'],
            ['b', 'c', 'u'],
          ],
          current: 'a',
        }),
        context: 'z',
        ...noEnv,
      }),
      'context "z" not found in kubeconfig (contexts: a, b); pass one of them to --context',
    ],
    [
      'no current-context',
      () => ({ kubeconfig: kubeconfig('nocur', { clusters: [['c', 'https://c']], users: ['u'], contexts: [['a', 'c', 'u']] }), ...noEnv }),
      'has no current-context; pass --context (one of: a)',
    ],
    [
      'a context naming a missing cluster',
      () => ({ kubeconfig: kubeconfig('nocl', { users: ['u'], contexts: [['a', 'gone', 'u']], current: 'a' }), ...noEnv }),
      'context "a" names cluster "gone", which is not in kubeconfig',
    ],
    [
      'bad YAML',
      () => ({ kubeconfig: (writeFileSync(join(dir, 'bad'), 'clusters: [\n'), join(dir, 'bad')), ...noEnv }),
      'cannot read kubeconfig /',
    ],
    ['bad -n', () => ({ kubeconfig: '/x', namespace: 'Shop', ...noEnv }), '-n/--namespace must be a namespace name'],
    [
      'bad --request-timeout',
      () => ({ kubeconfig: '/x', requestTimeout: 'soon', ...noEnv }),
      '--request-timeout must be a duration like 30s, 2m or 0 (no limit), not "soon"',
    ],
  ])('%s → one usage line', async (_, opts, message) => {
    const f = await loadFailure(opts());
    expect(f.code).toBe(ExitCode.USAGE);
    expect(f.message).toContain(message);
    expect(f.message).not.toContain('\n');
  });
});

describe('parseRequestTimeout', () => {
  test.each([
    ['0', 0],
    ['5', 5000],
    ['30s', 30_000],
    ['500ms', 500],
    ['2m', 120_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
  ])('%s → %d ms', (text, ms) => expect(parseRequestTimeout(text)).toBe(ms));
  test.each(['', 's', '5 s', '-1s', '1d'])('%j is refused', (text) => expect(() => parseRequestTimeout(text)).toThrow(NsdebugError));
});

describe('describeApiError: HTTP codes and network failures as one line', () => {
  const where = { server: 'https://api:6443', context: 'prod', requestTimeoutMs: 30_000 };
  const status = (message: string) => JSON.stringify({ kind: 'Status', status: 'Failure', message });
  test.each<[string, unknown, number, string]>([
    [
      '401',
      new ApiException(401, 'Unauthorized', undefined, {}),
      ExitCode.FORBIDDEN,
      'cannot get pod demo/web: the API server at https://api:6443 rejected your credentials (401 Unauthorized); log in again or check the user of context "prod" in your kubeconfig',
    ],
    [
      '403',
      new ApiException(
        403,
        'Unknown API Status Code!',
        status('pods "web" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "demo"'),
        {},
      ),
      ExitCode.FORBIDDEN,
      'cannot get pod demo/web: forbidden: pods "web" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "demo"; ask your cluster admin for this permission',
    ],
    [
      '404',
      new ApiException(404, 'Unknown API Status Code!', status('pods "web" not found'), {}),
      ExitCode.NOT_FOUND,
      'cannot get pod demo/web: not found: pods "web" not found',
    ],
    [
      '429',
      new ApiException(429, 'x', '', {}),
      ExitCode.API_UNREACHABLE,
      'is throttling requests (429 Too Many Requests); try again in a moment',
    ],
    [
      '503',
      new ApiException(503, 'x', 'upstream connect error', {}),
      ExitCode.API_UNREACHABLE,
      'cannot get pod demo/web: the API server at https://api:6443 failed (503): upstream connect error; try again',
    ],
    ['504', new ApiException(504, 'x', '', {}), ExitCode.API_UNREACHABLE, 'timed out (504)'],
    [
      'timeout',
      Object.assign(new Error('The user aborted a request.'), { name: 'AbortError', type: 'aborted' }),
      ExitCode.API_UNREACHABLE,
      'cannot get pod demo/web: the API server at https://api:6443 did not answer within 30s; check that the cluster is up, or raise --request-timeout',
    ],
    [
      'refused',
      Object.assign(new Error('request to https://api:6443/api failed, reason: connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      ExitCode.API_UNREACHABLE,
      'cannot reach the API server at https://api:6443 (ECONNREFUSED)',
    ],
    ['dns', Object.assign(new Error('getaddrinfo ENOTFOUND api'), { code: 'ENOTFOUND' }), ExitCode.API_UNREACHABLE, '(ENOTFOUND)'],
    [
      'tls',
      Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
      ExitCode.API_UNREACHABLE,
      'presented a certificate that cannot be verified (DEPTH_ZERO_SELF_SIGNED_CERT)',
    ],
    ['anything else', new Error('boom'), ExitCode.INTERNAL, 'cannot get pod demo/web: boom'],
  ])('%s', (_, err, code, message) => {
    const e = describeApiError(err, 'get pod demo/web', where);
    expect(e.exitCode).toBe(code);
    expect(e.message).toContain(message);
    expect(e.message).not.toMatch(/HTTP-Code|Headers|\n/);
  });
  test('an NsdebugError passes through', () => {
    const own = new NsdebugError('x', ExitCode.NOT_FOUND);
    expect(describeApiError(own, 'y')).toBe(own);
  });
});
