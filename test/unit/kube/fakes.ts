// Fakes of the API and of the exec transport, shared by the kube and cli unit tests.
import { AGENT_EXECUTABLE, CONTRACT_VERSION, encodeFrame, Frame } from '../../../src/contract.js';
import { NsdebugError } from '../../../src/errors.js';
import { Channel, type ExecSocket, type ExecStatus, type ExecTransport } from '../../../src/kube/exec.js';
import type { AccessAnswer, AccessClient, AccessQuestion } from '../../../src/kube/access.js';
import type { AgentClient } from '../../../src/kube/agent.js';
import type { TargetClient } from '../../../src/kube/target.js';
import type { ContainerStatusLike, LabelSelectorLike, NodeLike, PodLike, WorkloadKind } from '../../../src/pod.js';

export const ID = (c: string) => c.repeat(64);

/** The argv an exec into the agent runs for operation (ps, ns, cp…) with these flags. */
export const agentCommand = (operation: string, ...flags: string[]) => [
  AGENT_EXECUTABLE,
  operation,
  `--contract=${CONTRACT_VERSION}`,
  ...flags,
];
export const UID = '8d2f3c1e-5b4a-4c3d-9e8f-7a6b5c4d3e2f';

export const running = (name: string, id = ID('a'), extra: Partial<ContainerStatusLike> = {}): ContainerStatusLike => ({
  name,
  containerID: `containerd://${id}`,
  ready: true,
  restartCount: 0,
  state: { running: { startedAt: '2026-01-01T00:00:00Z' } },
  ...extra,
});

/** A scheduled, Ready pod whose containers all run (unless statuses say otherwise). */
export function fakePod(
  name: string,
  opts: {
    namespace?: string;
    containers?: string[];
    init?: string[];
    ephemeral?: string[];
    statuses?: ContainerStatusLike[];
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    node?: string | null;
    ready?: boolean;
    phase?: string;
    created?: string;
    os?: string;
  } = {},
): PodLike {
  const containers = opts.containers ?? ['app'];
  const ready = opts.ready ?? true;
  return {
    metadata: {
      name,
      namespace: opts.namespace ?? 'demo',
      uid: UID,
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
      creationTimestamp: opts.created ?? '2026-01-01T00:00:00Z',
    },
    spec: {
      ...(opts.node === null ? {} : { nodeName: opts.node ?? 'node-1' }),
      ...(opts.os ? { os: { name: opts.os } } : {}),
      containers: containers.map((c) => ({ name: c })),
      ...(opts.init ? { initContainers: opts.init.map((c) => ({ name: c })) } : {}),
      ...(opts.ephemeral ? { ephemeralContainers: opts.ephemeral.map((c) => ({ name: c })) } : {}),
    },
    status: {
      phase: opts.phase ?? 'Running',
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: opts.created ?? '2026-01-01T00:00:00Z' }],
      containerStatuses: opts.statuses ?? containers.map((c, i) => running(c, ID('abcdef'[i % 6] as string))),
    },
  };
}

export class FakeTargetClient implements TargetClient {
  readonly calls: string[] = [];
  constructor(
    readonly pods: PodLike[] = [],
    readonly workloads: Record<string, LabelSelectorLike> = {},
    readonly nodes: Record<string, NodeLike> = {},
    /** which pods each selector string matches */
    readonly selections: Record<string, string[]> = {},
    /** log text by "namespace/pod/container" (+ "/previous") */
    readonly logs: Record<string, string> = {},
  ) {}
  async readPod(namespace: string, name: string) {
    this.calls.push(`get pod ${namespace}/${name}`);
    return this.pods.find((p) => p.metadata?.name === name && p.metadata?.namespace === namespace);
  }
  async readSelector(kind: WorkloadKind, namespace: string, name: string) {
    this.calls.push(`get ${kind} ${namespace}/${name}`);
    return this.workloads[`${kind}/${namespace}/${name}`];
  }
  async listPods(namespace: string, selector: string) {
    this.calls.push(`list pods ${namespace} -l ${selector}`);
    const names = this.selections[selector] ?? [];
    return this.pods.filter((p) => p.metadata?.namespace === namespace && names.includes(p.metadata?.name ?? ''));
  }
  async readNode(name: string) {
    this.calls.push(`get node ${name}`);
    return this.nodes[name];
  }
  async readLogTail(namespace: string, pod: string, container: string, previous: boolean, lines: number) {
    this.calls.push(`logs ${namespace}/${pod} -c ${container}${previous ? ' --previous' : ''} --tail ${lines}`);
    return this.logs[`${namespace}/${pod}/${container}${previous ? '/previous' : ''}`] ?? '';
  }
}

export class FakeAccessClient implements AccessClient {
  readonly questions: AccessQuestion[] = [];
  constructor(readonly answer: AccessAnswer = { allowed: true }) {}
  async review(q: AccessQuestion) {
    this.questions.push(q);
    return this.answer;
  }
}

export const fakeAgentPod = (node: string, ready = true, name = `nsdebug-agent-${node}`): PodLike => ({
  metadata: { name, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { nodeName: node },
  status: {
    phase: 'Running',
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    containerStatuses: [{ name: 'agent', ready, state: { running: {} } }],
  },
});

export class FakeAgentClient implements AgentClient {
  readonly calls: string[] = [];
  constructor(readonly byNode: Record<string, PodLike[]> = {}) {}
  async listAgentPods(namespace: string, node: string) {
    this.calls.push(`list agents ${namespace} on ${node}`);
    return this.byNode[node] ?? [];
  }
}

/** One side of an exec stream, driven by the test as the API server would. */
export class FakeSocket implements ExecSocket {
  protocol = 'v5.channel.k8s.io';
  readonly sent: Buffer[] = [];
  closed = false;
  paused = false;
  /** the exec runs `nsdebug-agent enter --framed`: the agent's side speaks session frames */
  framed = false;
  private closeListeners: Array<(code: number, reason: Buffer) => void> = [];
  private errorListeners: Array<(err: Error) => void> = [];

  constructor(private readonly onBinary: ((channel: number, data: Buffer) => boolean) | null) {}

  send(data: Buffer, cb?: (err?: Error) => void): void {
    this.sent.push(Buffer.from(data));
    if (cb) setImmediate(cb);
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    setImmediate(() => this.closeListeners.forEach((l) => l(1000, Buffer.alloc(0))));
  }
  on(event: 'close' | 'error', listener: ((code: number, reason: Buffer) => void) | ((err: Error) => void)): this {
    if (event === 'close') this.closeListeners.push(listener as (code: number, reason: Buffer) => void);
    else this.errorListeners.push(listener as (err: Error) => void);
    return this;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }

  /** the server sends on a channel; returns whether the client keeps the socket */
  serve(channel: number, data: string | Buffer): boolean {
    const keep = this.onBinary?.(channel, typeof data === 'string' ? Buffer.from(data) : data) ?? true;
    if (!keep) this.close();
    return keep;
  }
  status(status: ExecStatus): void {
    this.serve(Channel.ERROR, JSON.stringify(status));
  }
  /** the command ended with code: its EXIT frame first in a framed session, then the exec's status */
  exit(code: number): void {
    if (this.framed) {
      const payload = Buffer.alloc(4);
      payload.writeInt32BE(code, 0);
      this.frame(Frame.EXIT, payload);
    }
    this.status(
      code === 0
        ? { status: 'Success' }
        : {
            status: 'Failure',
            reason: 'NonZeroExitCode',
            message: `command terminated with non-zero exit code: exit code ${code}`,
            details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
          },
    );
  }
  /** the agent sends a session frame (`enter --framed`: frames ride the exec's stdout) */
  frame(type: number, payload: string | Buffer = Buffer.alloc(0)): void {
    this.serve(Channel.STDOUT, encodeFrame(type, typeof payload === 'string' ? Buffer.from(payload) : payload));
  }
  /** the connection drops without a status */
  drop(code = 1006): void {
    this.closed = true;
    this.closeListeners.forEach((l) => l(code, Buffer.alloc(0)));
  }
  fail(err: Error): void {
    this.errorListeners.forEach((l) => l(err));
  }
  /** the frames the client sent on one channel */
  frames(channel: number): Buffer[] {
    return this.sent.filter((f) => f[0] === channel).map((f) => f.subarray(1));
  }
}

/**
 * An exec transport whose server runs `script` once the socket is open; `refuse` makes the
 * handshake fail as the `ws` package reports it.
 */
export class FakeTransport implements ExecTransport {
  readonly paths: string[] = [];
  socket: FakeSocket | undefined;
  constructor(
    private readonly script: (socket: FakeSocket, path: string) => void | Promise<void> = (s) => s.exit(0),
    private readonly refuse?: Error,
    private readonly protocol = 'v5.channel.k8s.io',
  ) {}
  async connect(path: string, _text: unknown, binary: ((channel: number, data: Buffer) => boolean) | null): Promise<FakeSocket> {
    this.paths.push(path);
    if (this.refuse) throw this.refuse;
    const socket = new FakeSocket(binary);
    socket.protocol = this.protocol;
    socket.framed = new URLSearchParams(path.split('?')[1]).getAll('command').includes('--framed');
    this.socket = socket;
    setImmediate(() => void this.script(socket, path));
    return socket;
  }
  /** the exec's command= parameters, in order */
  command(i = 0): string[] {
    return new URLSearchParams((this.paths[i] ?? '').split('?')[1]).getAll('command');
  }
  query(i = 0): URLSearchParams {
    return new URLSearchParams((this.paths[i] ?? '').split('?')[1]);
  }
}

/** The NsdebugError f throws, as { code, message }; fails when it returns. */
export function thrownBy(f: () => unknown): { code: number; message: string } {
  try {
    f();
  } catch (err) {
    if (err instanceof NsdebugError) return { code: err.exitCode, message: err.message };
    throw err;
  }
  throw new Error('no error');
}

/** The NsdebugError a promise rejects with, as { code, message }; fails when it resolves. */
export async function failure(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof NsdebugError) return { code: err.exitCode, message: err.message };
    throw err;
  }
  throw new Error('no error');
}
