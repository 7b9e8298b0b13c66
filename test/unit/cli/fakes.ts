// A fake cluster and fake process streams for the run functions (src/cli/debug.ts, ps.ts).
import { PassThrough, Writable } from 'node:stream';

import { failureOf } from '../../../src/cli/failure.js';
import type { CliIo } from '../../../src/cli/io.js';
import type { ClusterDeps } from '../../../src/cli/prepare.js';
import type { LocalTerminal } from '../../../src/cli/terminal.js';
import type { DebugSessionSpec } from '../../../src/contract.js';
import type { KubeConfigOptions, KubeConnection } from '../../../src/kube/config.js';
import type { SessionClient } from '../../../src/kube/debug-session.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { FakeAccessClient, FakeAgentClient, FakeTargetClient, FakeTransport } from '../kube/fakes.js';

export class FakeOutput extends Writable {
  readonly chunks: Buffer[] = [];
  isTTY = false;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void) {
    this.chunks.push(chunk);
    cb();
  }
  text() {
    return Buffer.concat(this.chunks).toString();
  }
}

export class FakeTerminal implements LocalTerminal {
  readonly events: string[] = [];
  raw = false;
  size() {
    return { cols: 80, rows: 24 };
  }
  onResize() {
    return () => undefined;
  }
  makeRaw() {
    this.raw = true;
    this.events.push('raw');
  }
  restore() {
    if (this.raw) this.events.push('restore');
    this.raw = false;
  }
}

export function fakeIo(
  opts: { stdinIsTTY?: boolean; stderrIsTTY?: boolean } = {},
): CliIo & { stdout: FakeOutput; stderr: FakeOutput; terminal: FakeTerminal; stdin: PassThrough } {
  const stdin = new PassThrough();
  return {
    stdin,
    stdout: new FakeOutput(),
    stderr: new FakeOutput(),
    terminal: new FakeTerminal(),
    facts: { stdinIsTTY: opts.stdinIsTTY ?? false, stderrIsTTY: opts.stderrIsTTY ?? false },
  };
}

/** A stand-in for the DebugSession API (unit tier; e2e uses the real API server): records creates and deletes. */
export class FakeSessionClient implements SessionClient {
  readonly created: Array<{ namespace: string; spec: DebugSessionSpec }> = [];
  readonly removed: string[] = [];
  constructor(
    readonly user = 'alice',
    private readonly refuse?: Error,
  ) {}
  async whoAmI() {
    return this.user;
  }
  async create(namespace: string, spec: DebugSessionSpec) {
    if (this.refuse) throw this.refuse;
    this.created.push({ namespace, spec });
    return `nsdebug-${this.created.length}`;
  }
  async remove(namespace: string, name: string) {
    this.removed.push(`${namespace}/${name}`);
  }
}

export interface FakeCluster extends ClusterDeps {
  kubeOptions: KubeConfigOptions[];
  targets: FakeTargetClient;
  access: FakeAccessClient;
  agents: FakeAgentClient;
  transport: FakeTransport;
  sessions: FakeSessionClient;
}

export function fakeCluster(parts: {
  targets: FakeTargetClient;
  access?: FakeAccessClient;
  agents?: FakeAgentClient;
  transport?: FakeTransport;
  sessions?: FakeSessionClient;
  namespace?: string;
}): FakeCluster {
  const kubeOptions: KubeConfigOptions[] = [];
  const cluster = {
    kubeOptions,
    targets: parts.targets,
    access: parts.access ?? new FakeAccessClient(),
    agents: parts.agents ?? new FakeAgentClient(),
    transport: parts.transport ?? new FakeTransport(),
    loadKubeConfig: async (opts: KubeConfigOptions): Promise<KubeConnection> => {
      kubeOptions.push(opts);
      return {
        kc: {} as KubeConfig,
        context: 'test',
        namespace: opts.namespace ?? parts.namespace ?? 'demo',
        namespaceFromFlag: opts.namespace !== undefined,
        server: 'https://fake:6443',
        user: 'tester',
        requestTimeoutMs: 1000,
        sources: [],
      };
    },
    targetClient: async () => cluster.targets,
    accessClient: async () => cluster.access,
    agentClient: async () => cluster.agents,
    execTransport: async () => cluster.transport,
    sessions: parts.sessions ?? new FakeSessionClient(),
    sessionClient: async () => cluster.sessions,
  };
  return cluster;
}

/** The line and exit code a user would get from what parse throws (src/cli/failure.ts). */
export async function refusal(parse: Promise<unknown>): Promise<{ line?: string; exitCode: number }> {
  try {
    await parse;
  } catch (err) {
    return failureOf(err);
  }
  throw new Error('accepted');
}
