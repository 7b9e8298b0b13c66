// A small typed client for the Kubernetes CRI (runtime.v1) over a unix socket, for tests:
// it speaks to containerd's CRI plugin exactly as kubelet does, through our own subset of
// the CRI proto (./cri/api.proto). Field names are the proto's, in camelCase; int64 values
// (timestamps in nanoseconds) are decimal strings; enums are their names.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

// ---- types (only what the harness uses) ----

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
export type PodSandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
export type Labels = Record<string, string>;

export interface NamespaceOption {
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
  targetId?: string;
}
export interface Int64Value {
  value: number | string;
}
export interface SecurityProfile {
  profileType?: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  localhostRef?: string;
}
export interface LinuxContainerResources {
  cpuPeriod?: number;
  cpuQuota?: number;
  cpuShares?: number;
  memoryLimitInBytes?: number;
  oomScoreAdj?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  unified?: Labels;
  memorySwapLimitInBytes?: number;
}
export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}
export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  logDirectory?: string;
  dnsConfig?: { servers?: string[]; searches?: string[]; options?: string[] };
  labels?: Labels;
  annotations?: Labels;
  linux?: {
    cgroupParent?: string;
    securityContext?: {
      namespaceOptions?: NamespaceOption;
      runAsUser?: Int64Value;
      runAsGroup?: Int64Value;
      readonlyRootfs?: boolean;
      supplementalGroups?: number[];
      privileged?: boolean;
      seccomp?: SecurityProfile;
    };
    sysctls?: Labels;
    overhead?: LinuxContainerResources;
    resources?: LinuxContainerResources;
  };
}
export interface Mount {
  containerPath: string;
  hostPath: string;
  readonly?: boolean;
  selinuxRelabel?: boolean;
  propagation?: 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';
}
export interface LinuxContainerSecurityContext {
  capabilities?: { addCapabilities?: string[]; dropCapabilities?: string[] };
  privileged?: boolean;
  namespaceOptions?: NamespaceOption;
  runAsUser?: Int64Value;
  runAsUsername?: string;
  readonlyRootfs?: boolean;
  supplementalGroups?: number[];
  noNewPrivs?: boolean;
  runAsGroup?: Int64Value;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  seccomp?: SecurityProfile;
  apparmor?: SecurityProfile;
}
export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string; annotations?: Labels };
  command?: string[];
  args?: string[];
  workingDir?: string;
  envs?: { key: string; value: string }[];
  mounts?: Mount[];
  labels?: Labels;
  annotations?: Labels;
  logPath?: string;
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
  linux?: { resources?: LinuxContainerResources; securityContext?: LinuxContainerSecurityContext };
}
export interface PodSandboxStatus {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  createdAt: string;
  network: { ip: string; additionalIps: { ip: string }[] } | null;
  linux: { namespaces: { options: NamespaceOption | null } | null } | null;
  labels: Labels;
  annotations: Labels;
  runtimeHandler: string;
}
export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  createdAt: string;
  labels: Labels;
  annotations: Labels;
  runtimeHandler: string;
}
export interface Container {
  id: string;
  podSandboxId: string;
  metadata: { name: string; attempt: number };
  image: { image: string } | null;
  imageRef: string;
  state: ContainerState;
  createdAt: string;
  labels: Labels;
  annotations: Labels;
}
export interface ContainerStatus {
  id: string;
  metadata: { name: string; attempt: number };
  state: ContainerState;
  createdAt: string;
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  image: { image: string } | null;
  imageRef: string;
  reason: string;
  message: string;
  labels: Labels;
  annotations: Labels;
  mounts: Mount[];
  logPath: string;
}
export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}
export interface Image {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: string;
  username: string;
  pinned: boolean;
}

// ---- client ----

/** Where api.proto is: next to this file, or (from dist/) in the source tree. */
function protoPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'cri', 'api.proto')];
  for (let d = here; dirname(d) !== d; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) candidates.push(join(d, 'test', 'support', 'cri', 'api.proto'));
  }
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`CRI proto not found (looked in ${candidates.join(', ')})`);
  return found;
}

type Unary = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

let loaded: grpc.GrpcObject | undefined;
function services(): { runtime: grpc.ServiceClientConstructor; image: grpc.ServiceClientConstructor } {
  if (!loaded) {
    const def = protoLoader.loadSync(protoPath(), { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
    loaded = grpc.loadPackageDefinition(def);
  }
  const v1 = (loaded.runtime as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return { runtime: v1.RuntimeService as grpc.ServiceClientConstructor, image: v1.ImageService as grpc.ServiceClientConstructor };
}

/** The containerd address from the environment (set by the integration tier's global setup). */
export function defaultAddress(): string {
  const a = process.env.CONTAINERD_ADDRESS;
  if (!a) throw new Error('CONTAINERD_ADDRESS is not set: run the integration tier through jest (its global setup starts containerd)');
  return a;
}

/** `unix:///path`, `unix:/path` or a plain `/path` → the grpc target `unix:///path`. */
export function grpcTarget(address: string): string {
  if (address.startsWith('unix://')) return `unix://${address.slice('unix://'.length).replace(/^\/*/, '/')}`;
  if (address.startsWith('unix:')) return `unix://${address.slice('unix:'.length).replace(/^\/*/, '/')}`;
  if (address.startsWith('/')) return `unix://${address}`;
  throw new Error(`not a unix socket address: ${address}`);
}

export class CriError extends Error {
  constructor(
    readonly method: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`CRI ${method}: ${grpc.status[code] ?? code}: ${details}`);
    this.name = 'CriError';
  }
}

export class CriClient {
  readonly address: string;
  private readonly runtime: grpc.Client;
  private readonly image: grpc.Client;
  /** Deadline of each call, in ms. */
  timeoutMs = 60_000;

  constructor(address: string = defaultAddress()) {
    this.address = address;
    const { runtime, image } = services();
    const target = grpcTarget(address);
    const opts = { 'grpc.max_receive_message_length': 16 * 1024 * 1024 };
    this.runtime = new runtime(target, grpc.credentials.createInsecure(), opts);
    this.image = new image(target, grpc.credentials.createInsecure(), opts);
  }

  close(): void {
    this.runtime.close();
    this.image.close();
  }

  private call<T>(client: grpc.Client, method: string, req: object): Promise<T> {
    const fn = (client as unknown as Record<string, Unary>)[method];
    if (typeof fn !== 'function') return Promise.reject(new Error(`CRI method ${method} is not in api.proto`));
    return new Promise((resolve, reject) => {
      fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err) reject(new CriError(method, err.code, err.details || err.message));
        else resolve(res as T);
      });
    });
  }

  // runtime service
  version(): Promise<{ version: string; runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }> {
    return this.call(this.runtime, 'Version', { version: 'v1' });
  }
  async status(
    verbose = false,
  ): Promise<{ conditions: { type: string; status: boolean; reason: string; message: string }[]; info: Labels }> {
    const r = await this.call<{
      status: { conditions: { type: string; status: boolean; reason: string; message: string }[] } | null;
      info: Labels;
    }>(this.runtime, 'Status', { verbose });
    return { conditions: r.status?.conditions ?? [], info: r.info };
  }
  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ''): Promise<string> {
    return (await this.call<{ podSandboxId: string }>(this.runtime, 'RunPodSandbox', { config, runtimeHandler })).podSandboxId;
  }
  async stopPodSandbox(podSandboxId: string): Promise<void> {
    await this.call(this.runtime, 'StopPodSandbox', { podSandboxId });
  }
  async removePodSandbox(podSandboxId: string): Promise<void> {
    await this.call(this.runtime, 'RemovePodSandbox', { podSandboxId });
  }
  async podSandboxStatus(podSandboxId: string, verbose = false): Promise<{ status: PodSandboxStatus; info: Labels }> {
    return this.call(this.runtime, 'PodSandboxStatus', { podSandboxId, verbose });
  }
  async listPodSandbox(filter: { id?: string; state?: PodSandboxState; labelSelector?: Labels } = {}): Promise<PodSandbox[]> {
    const f = {
      id: filter.id ?? '',
      labelSelector: filter.labelSelector ?? {},
      ...(filter.state ? { state: { state: filter.state } } : {}),
    };
    return (await this.call<{ items: PodSandbox[] }>(this.runtime, 'ListPodSandbox', { filter: f })).items;
  }
  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    return (await this.call<{ containerId: string }>(this.runtime, 'CreateContainer', { podSandboxId, config, sandboxConfig })).containerId;
  }
  async startContainer(containerId: string): Promise<void> {
    await this.call(this.runtime, 'StartContainer', { containerId });
  }
  /** timeout: seconds to wait after the stop signal before SIGKILL; 0 = SIGKILL at once. */
  async stopContainer(containerId: string, timeout = 0): Promise<void> {
    await this.call(this.runtime, 'StopContainer', { containerId, timeout });
  }
  async removeContainer(containerId: string): Promise<void> {
    await this.call(this.runtime, 'RemoveContainer', { containerId });
  }
  async listContainers(
    filter: { id?: string; state?: ContainerState; podSandboxId?: string; labelSelector?: Labels } = {},
  ): Promise<Container[]> {
    const f = {
      id: filter.id ?? '',
      podSandboxId: filter.podSandboxId ?? '',
      labelSelector: filter.labelSelector ?? {},
      ...(filter.state ? { state: { state: filter.state } } : {}),
    };
    return (await this.call<{ containers: Container[] }>(this.runtime, 'ListContainers', { filter: f })).containers;
  }
  /** With verbose, info.info is containerd's JSON (pid, runtimeSpec, snapshotKey, …). */
  async containerStatus(containerId: string, verbose = false): Promise<{ status: ContainerStatus; info: Labels }> {
    return this.call(this.runtime, 'ContainerStatus', { containerId, verbose });
  }
  /** Runs a command in the container through the runtime (like `crictl exec -s`). */
  async execSync(containerId: string, cmd: string[], timeoutSeconds = 0): Promise<ExecSyncResult> {
    return this.call(this.runtime, 'ExecSync', { containerId, cmd, timeout: timeoutSeconds });
  }

  // image service
  async listImages(): Promise<Image[]> {
    return (await this.call<{ images: Image[] }>(this.image, 'ListImages', { filter: null })).images;
  }
  /** The image, or null when the runtime does not have it. */
  async imageStatus(image: string): Promise<Image | null> {
    return (await this.call<{ image: Image | null }>(this.image, 'ImageStatus', { image: { image } })).image;
  }
}
