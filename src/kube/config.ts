// Which cluster, as which user, in which namespace: kubectl's rules for --kubeconfig, KUBECONFIG,
// ~/.kube/config, --context, -n and --request-timeout, and the one place API failures become
// sentences. @kubernetes/client-node takes ~650 ms to import, so it is loaded here, lazily, and
// only by commands that talk to a cluster (`--help` never does).
//
// Used by every command that talks to a cluster:
//   const conn = await loadKubeConfig({ kubeconfig, context, namespace, requestTimeout });
//   const { core } = await apiClients(conn);
//   try { … } catch (err) { throw describeApiError(err, 'get pod demo/web', conn); }
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

import { ExitCode } from '../contract.js';
import { parseDuration } from '../duration.js';
import { NsdebugError, usageError } from '../errors.js';
import { DNS_LABEL } from '../names.js';
import { oneLine } from '../text.js';

import type { AuthorizationV1Api, AppsV1Api, BatchV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';

type ClientNode = typeof import('./client-node.js');

/** kubectl's global flags, as the user gave them; everything optional. */
export interface KubeConfigOptions {
  /** --kubeconfig: this one file only (it must exist) */
  kubeconfig?: string;
  /** --context: a context name from the kubeconfig, instead of its current-context */
  context?: string;
  /** -n/--namespace: wins over the context's namespace */
  namespace?: string;
  /** --request-timeout: "30s", "2m", "1h", a bare number of seconds, or "0" for no limit */
  requestTimeout?: string;
  /** the environment to read KUBECONFIG and in-cluster variables from (tests); process.env by default */
  env?: Record<string, string | undefined>;
  /** the home directory for ~/.kube/config (tests); os.homedir() by default */
  home?: string;
}

/** A kubeconfig resolved to one context: what every API call and exec stream needs. */
export interface KubeConnection {
  kc: KubeConfig;
  /** the context in use ("" for in-cluster configuration) */
  context: string;
  /** -n, else the context's namespace, else "default" */
  namespace: string;
  /** true when the namespace came from -n */
  namespaceFromFlag: boolean;
  /** the API server's URL, for messages */
  server: string;
  /** the user entry's name, for messages */
  user: string;
  /** limit for each API request and for opening an exec stream, in ms; 0 = none */
  requestTimeoutMs: number;
  /** the kubeconfig files read, in precedence order */
  sources: string[];
}

/**
 * Without --request-timeout a request still gives up after this long, as client-go's 30 s dial
 * timeout does for kubectl: a silent firewall then reads as "unreachable", not as a hang.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

let clientNodeModule: Promise<ClientNode> | undefined;

/**
 * @kubernetes/client-node (the parts ./client-node.ts names), imported once, on first use. In
 * the CLI's start-up snapshot (build/cli.mjs) it is already loaded.
 */
export function clientNode(): Promise<ClientNode> {
  clientNodeModule ??= import('./client-node.js');
  return clientNodeModule;
}

/** kubectl's --request-timeout: a Go-style duration ("1m30s", "500ms") or bare seconds → ms; "0" = none. */
export function parseRequestTimeout(text: string, flag = '--request-timeout'): number {
  try {
    return Math.round(parseDuration(text.trim(), flag));
  } catch {
    throw usageError(`${flag} must be a duration like 30s, 2m or 0 (no limit), not "${text}"`);
  }
}

/** The kubeconfig files kubectl would read, in precedence order, and whether the user named them. */
export function kubeconfigFiles(opts: Pick<KubeConfigOptions, 'kubeconfig' | 'env' | 'home'>): { files: string[]; explicit: boolean } {
  if (opts.kubeconfig) return { files: [opts.kubeconfig], explicit: true };
  const env = opts.env ?? process.env;
  const list = env.KUBECONFIG;
  if (list) {
    // kubectl skips KUBECONFIG entries that do not exist and reads each file once
    return { files: [...new Set(list.split(delimiter).filter(Boolean))], explicit: false };
  }
  return { files: [join(opts.home ?? homedir(), '.kube', 'config')], explicit: false };
}

interface Named {
  name: string;
}

/** Merge kubeconfigs as kubectl does: for each cluster/user/context name and for current-context, the first file that sets it wins. */
export function mergeKubeConfigs<C extends Named, U extends Named, X extends Named>(
  configs: Array<{ clusters: C[]; users: U[]; contexts: X[]; currentContext?: string }>,
): { clusters: C[]; users: U[]; contexts: X[]; currentContext: string } {
  const firstWins = <T extends Named>(lists: T[][]) => {
    const byName = new Map<string, T>();
    for (const list of lists) for (const item of list) if (!byName.has(item.name)) byName.set(item.name, item);
    return [...byName.values()];
  };
  return {
    clusters: firstWins(configs.map((c) => c.clusters)),
    users: firstWins(configs.map((c) => c.users)),
    contexts: firstWins(configs.map((c) => c.contexts)),
    currentContext: configs.map((c) => c.currentContext).find((c) => c) ?? '',
  };
}

const firstLine = (text: string) => text.split('\n')[0]?.trim() ?? '';

/**
 * Read the kubeconfig as kubectl does and pick the context and namespace. Throws NsdebugError
 * (USAGE) naming the file or the flag when the configuration cannot be used. Imports client-node.
 */
export async function loadKubeConfig(opts: KubeConfigOptions = {}): Promise<KubeConnection> {
  const requestTimeoutMs = opts.requestTimeout === undefined ? DEFAULT_REQUEST_TIMEOUT_MS : parseRequestTimeout(opts.requestTimeout);
  if (opts.namespace !== undefined && !DNS_LABEL.test(opts.namespace)) {
    throw usageError(`-n/--namespace must be a namespace name (lowercase letters, digits, '-'), not "${opts.namespace}"`);
  }
  const env = opts.env ?? process.env;
  const { files, explicit } = kubeconfigFiles(opts);
  if (explicit && !existsSync(files[0] as string)) {
    throw usageError(`cannot read kubeconfig ${files[0]}: no such file; pass an existing file to --kubeconfig`);
  }
  const k8s = await clientNode();
  const present = files.filter((f) => existsSync(f));
  const loaded = present.map((file) => {
    const one = new k8s.KubeConfig();
    try {
      one.loadFromFile(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'EACCES' ? 'permission denied' : firstLine(e.message ?? String(err));
      throw usageError(`cannot read kubeconfig ${file}: ${why}; fix the file or pass another with --kubeconfig`);
    }
    return one;
  });

  const kc = new k8s.KubeConfig();
  if (loaded.length) {
    kc.loadFromOptions(
      mergeKubeConfigs(
        loaded.map((c) => ({ clusters: c.clusters, users: c.users, contexts: c.contexts, currentContext: c.currentContext })),
      ),
    );
  } else if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && !opts.context) {
    kc.loadFromCluster(); // like kubectl inside a pod: the service account's token
  } else {
    throw usageError(`no kubeconfig found (looked in ${files.join(', ')}); set KUBECONFIG or pass --kubeconfig`);
  }

  if (opts.context !== undefined) {
    if (!kc.getContextObject(opts.context)) {
      const names = kc.getContexts().map((c) => c.name);
      throw usageError(
        `context "${opts.context}" not found in kubeconfig${names.length ? ` (contexts: ${names.join(', ')})` : ''}; pass one of them to --context`,
      );
    }
    kc.setCurrentContext(opts.context);
  }
  const contextName = kc.getCurrentContext();
  const context = contextName ? kc.getContextObject(contextName) : null;
  if (!context) {
    const names = kc.getContexts().map((c) => c.name);
    throw usageError(
      contextName
        ? `current-context "${contextName}" is not defined in kubeconfig (${present.join(', ')}); pass --context${names.length ? ` (one of: ${names.join(', ')})` : ''}`
        : `kubeconfig (${present.join(', ')}) has no current-context; pass --context${names.length ? ` (one of: ${names.join(', ')})` : ''} or run \`kubectl config use-context\``,
    );
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw usageError(
      `context "${contextName}" names cluster "${context.cluster}", which is not in kubeconfig; fix the kubeconfig or pass another --context`,
    );
  const user = kc.getCurrentUser();
  if (context.user && !user)
    throw usageError(
      `context "${contextName}" names user "${context.user}", which is not in kubeconfig; fix the kubeconfig or pass another --context`,
    );

  const namespace = opts.namespace ?? (context.namespace || 'default');
  if (!DNS_LABEL.test(namespace))
    throw usageError(`context "${contextName}" sets namespace "${namespace}", which is not a namespace name; pass -n`);

  if (requestTimeoutMs > 0) withRequestTimeout(kc, requestTimeoutMs);
  return {
    kc,
    context: contextName,
    namespace,
    namespaceFromFlag: opts.namespace !== undefined,
    server: cluster.server,
    user: user?.name ?? '',
    requestTimeoutMs,
    sources: present,
  };
}

/** Every API request made through kc's clients is aborted after ms (after credentials were obtained). */
function withRequestTimeout(kc: KubeConfig, ms: number): void {
  const apply = kc.applySecurityAuthentication.bind(kc);
  kc.applySecurityAuthentication = async (context) => {
    await apply(context);
    context.setSignal(AbortSignal.timeout(ms) as Parameters<typeof context.setSignal>[0]);
  };
}

/** The typed API clients the CLI uses, built on first use. */
export interface ApiClients {
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  authorization: AuthorizationV1Api;
}

export async function apiClients(conn: KubeConnection): Promise<ApiClients> {
  const k8s = await clientNode();
  return {
    core: conn.kc.makeApiClient(k8s.CoreV1Api),
    apps: conn.kc.makeApiClient(k8s.AppsV1Api),
    batch: conn.kc.makeApiClient(k8s.BatchV1Api),
    authorization: conn.kc.makeApiClient(k8s.AuthorizationV1Api),
  };
}

// ---- failures as sentences ----

/** client-node's ApiException, recognised by shape so this module needs no runtime import. */
/** A list call's page size: what kubectl asks for (its --chunk-size). */
export const LIST_PAGE = 500;

/**
 * Every item of a list, a page at a time: on a thousand nodes one unpaged list is a response the
 * API server must build whole. `list` gets the page's limit and continue token.
 */
export async function listAllPages<T>(
  list: (page: { limit: number; _continue?: string }) => Promise<{ items: T[]; metadata?: { _continue?: string } }>,
): Promise<T[]> {
  const items: T[] = [];
  let _continue: string | undefined;
  do {
    const page = await list({ limit: LIST_PAGE, ...(_continue ? { _continue } : {}) });
    items.push(...page.items);
    _continue = page.metadata?._continue || undefined;
  } while (_continue);
  return items;
}

export interface ApiExceptionLike {
  code: number;
  body?: unknown;
}

export function isApiException(err: unknown): err is ApiExceptionLike {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'number' && /^HTTP-Code: /.test(err.message);
}

export const apiStatusCode = (err: unknown): number | undefined => (isApiException(err) ? err.code : undefined);

/** The `message` of a metav1.Status body (a JSON string or object), else a short piece of the body. */
export function statusMessage(body: unknown): string {
  let parsed = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return oneLine(body).slice(0, 200);
    }
  }
  return oneLine((parsed as { message?: string } | undefined)?.message).slice(0, 300);
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
]);

type Where = Pick<KubeConnection, 'server' | 'context' | 'requestTimeoutMs'>;

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

/**
 * Any failure of an API request as one NsdebugError: `doing` completes "cannot …" ("get pod
 * demo/web"); `forbidden` says what to do about a 403 (what the command takes). HTTP codes become
 * sentences and exit codes; a raw ApiException is never shown. Callers handle the codes that mean
 * something specific to them (404 → "pod not found") first.
 */
export function describeApiError(
  err: unknown,
  doing: string,
  where?: Where,
  forbidden = 'ask your cluster admin for this permission',
): NsdebugError {
  if (err instanceof NsdebugError) return err;
  const server = where?.server ? `the API server at ${where.server}` : 'the API server';
  if (isApiException(err)) {
    const why = statusMessage(err.body);
    const because = why ? `: ${why}` : '';
    switch (err.code) {
      case 401:
        return new NsdebugError(
          `cannot ${doing}: ${server} rejected your credentials (401 Unauthorized); log in again or check the user of context "${where?.context ?? ''}" in your kubeconfig`,
          ExitCode.FORBIDDEN,
        );
      case 403:
        return new NsdebugError(`cannot ${doing}: forbidden${because}; ${forbidden}`, ExitCode.FORBIDDEN);
      case 404:
        return new NsdebugError(`cannot ${doing}: not found${because}`, ExitCode.NOT_FOUND);
      case 408:
      case 504:
        return new NsdebugError(
          `cannot ${doing}: ${server} timed out (${err.code}); try again, or raise --request-timeout`,
          ExitCode.API_UNREACHABLE,
        );
      case 429:
        return new NsdebugError(
          `cannot ${doing}: ${server} is throttling requests (429 Too Many Requests); try again in a moment`,
          ExitCode.API_UNREACHABLE,
        );
    }
    if (err.code >= 500)
      return new NsdebugError(`cannot ${doing}: ${server} failed (${err.code})${because}; try again`, ExitCode.API_UNREACHABLE);
    return new NsdebugError(`cannot ${doing}: ${server} answered ${err.code}${because}`, ExitCode.INTERNAL);
  }
  const e = err as { name?: string; type?: string; code?: string; errno?: string; message?: string; cause?: { code?: string } } | undefined;
  if (e?.name === 'AbortError' || e?.type === 'aborted' || e?.name === 'TimeoutError') {
    const limit = where?.requestTimeoutMs ? ` within ${seconds(where.requestTimeoutMs)}` : '';
    return new NsdebugError(
      `cannot ${doing}: ${server} did not answer${limit}; check that the cluster is up, or raise --request-timeout`,
      ExitCode.API_UNREACHABLE,
    );
  }
  const code = e?.code ?? e?.errno ?? e?.cause?.code ?? /\b(E[A-Z]{4,}|[A-Z_]*CERT[A-Z_]*)\b/.exec(e?.message ?? '')?.[1] ?? '';
  if (TLS_CODES.has(code)) {
    return new NsdebugError(
      `cannot ${doing}: ${server} presented a certificate that cannot be verified (${code}); check certificate-authority for context "${where?.context ?? ''}" in your kubeconfig`,
      ExitCode.API_UNREACHABLE,
    );
  }
  if (NETWORK_CODES.has(code) || /socket hang up|network/i.test(e?.message ?? '')) {
    return new NsdebugError(
      `cannot reach ${server} (${code || oneLine(e?.message)}); check that the cluster is up and that context "${where?.context ?? ''}" is the right one (--context)`,
      ExitCode.API_UNREACHABLE,
    );
  }
  if (/exec|credential|token/i.test(e?.message ?? '') && /fail|error|refresh/i.test(e?.message ?? '')) {
    return new NsdebugError(
      `cannot ${doing}: getting credentials failed: ${firstLine(e?.message ?? '')}; check the user of context "${where?.context ?? ''}" in your kubeconfig`,
      ExitCode.FORBIDDEN,
    );
  }
  return new NsdebugError(`cannot ${doing}: ${oneLine(e?.message) || String(err)}`, ExitCode.INTERNAL);
}
