// containerd's gRPC API, the two calls the agent makes: a container's record (its labels: which
// pod and container an ID belongs to; its OCI spec: the user and capabilities it ran with) and
// its snapshot's mounts (a dead container's layers). CRI's containers live in containerd's
// "k8s.io" namespace.
import type { IMapField, INamespace } from 'protobufjs';

import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { shortId } from './resolve.js';

/** containerd's socket as the node has it (the DaemonSet mounts /run/containerd). */
export const DEFAULT_RUNTIME_ENDPOINT = 'unix:///run/containerd/containerd.sock';

const string = (id: number) => ({ type: 'string', id });

/**
 * The part of containerd's API used here (containerd/api: services/snapshots/v1,
 * services/containers/v1, types/mount; Apache-2.0) as a protobufjs JSON descriptor.
 */
const API: INamespace = {
  nested: {
    containerd: {
      nested: {
        types: {
          nested: {
            Mount: { fields: { type: string(1), source: string(2), target: string(3), options: { rule: 'repeated', ...string(4) } } },
          },
        },
        services: {
          nested: {
            snapshots: {
              nested: {
                v1: {
                  nested: {
                    Snapshots: { methods: { Mounts: { requestType: 'MountsRequest', responseType: 'MountsResponse', comment: '' } } },
                    MountsRequest: { fields: { snapshotter: string(1), key: string(2) } },
                    MountsResponse: { fields: { mounts: { rule: 'repeated', type: 'containerd.types.Mount', id: 1 } } },
                  },
                },
              },
            },
            containers: {
              nested: {
                v1: {
                  nested: {
                    Containers: {
                      methods: { Get: { requestType: 'GetContainerRequest', responseType: 'GetContainerResponse', comment: '' } },
                    },
                    GetContainerRequest: { fields: { id: string(1) } },
                    GetContainerResponse: { fields: { container: { type: 'Container', id: 1 } } },
                    Container: {
                      fields: {
                        id: string(1),
                        labels: { keyType: 'string', type: 'string', id: 2 } as IMapField,
                        // google.protobuf.Any: containerd stores the OCI runtime spec as JSON bytes
                        spec: { type: 'Any', id: 5 },
                      },
                    },
                    Any: { fields: { type_url: string(1), value: { type: 'bytes', id: 2 } } },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

interface Mount {
  type: string;
  source: string;
  options: string[];
}

type Unary<Req, Res> = (
  req: Req,
  metadata: unknown,
  options: { deadline: number },
  callback: (err: Error | null, res: Res) => void,
) => void;
interface Client {
  close(): void;
}
interface Api {
  containerd: {
    services: {
      snapshots: {
        v1: {
          Snapshots: new (
            address: string,
            creds: unknown,
          ) => Client & { Mounts: Unary<{ snapshotter: string; key: string }, { mounts: Mount[] }> };
        };
      };
      containers: {
        v1: {
          Containers: new (
            address: string,
            creds: unknown,
          ) => Client & {
            Get: Unary<
              { id: string },
              { container: { labels: Record<string, string>; spec?: { type_url: string; value: Buffer } | null } }
            >;
          };
        };
      };
    };
  };
}

/** One call to containerd; NOT_FOUND → notFound(), unreachable → a one-line error naming the socket. */
async function call<T>(
  endpoint: string,
  run: (api: Api, creds: unknown, metadata: unknown) => Promise<T>,
  notFound: () => NsdebugError,
): Promise<T> {
  if (!endpoint.startsWith('unix://')) {
    throw new NsdebugError(`runtime endpoint ${endpoint} is not supported yet (containerd over a unix socket only)`, ExitCode.ENTER_FAILED);
  }
  // Both are CommonJS: their module.exports is `default`, under Node's import() as in the agent's
  // bundle (build/agent.mjs), where a CommonJS package split into a chunk of its own has no other export.
  const [{ default: grpc }, { default: loader }] = await Promise.all([import('@grpc/grpc-js'), import('@grpc/proto-loader')]);
  const api = grpc.loadPackageDefinition(loader.fromJSON(API, { keepCase: true, defaults: true, arrays: true })) as unknown as Api;
  const metadata = new grpc.Metadata();
  metadata.set('containerd-namespace', 'k8s.io');
  try {
    return await run(api, grpc.credentials.createInsecure(), metadata);
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (code === grpc.status.NOT_FOUND) throw notFound();
    if (code === grpc.status.UNAVAILABLE)
      throw new NsdebugError(`cannot reach containerd at ${endpoint}: ${(err as Error).message}`, ExitCode.ENTER_FAILED);
    throw err;
  }
}

function unary<Req, Res>(client: Client, method: Unary<Req, Res>, req: Req, metadata: unknown): Promise<Res> {
  return new Promise<Res>((resolve, reject) =>
    method.call(client, req, metadata, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res))),
  ).finally(() => client.close());
}

/** containerd's endpoint, when the DaemonSet names one other than the default. */
export const runtimeEndpoint = () => process.env.NSDEBUG_RUNTIME_ENDPOINT;

/** The container's layers, top (its own writes) first: overlayfs lowerdir syntax, host paths. */
export function layersOf(mounts: Mount[]): string {
  const [mount] = mounts;
  if (mounts.length !== 1 || !mount) throw new Error(`expected one mount from the snapshotter, got ${mounts.length}`);
  if (mount.type === 'bind') return mount.source;
  if (mount.type !== 'overlay') throw new Error(`unsupported snapshot mount type ${mount.type}`);
  const option = (name: string) => mount.options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);
  const layers = [option('upperdir'), ...(option('lowerdir')?.split(':') ?? [])].filter((l): l is string => !!l);
  if (!layers.length) throw new Error('the snapshot mount names no layer');
  if (layers.some((l) => !l.startsWith('/') || /[,:]/.test(l))) throw new Error('a snapshot layer path is not a plain absolute path');
  return layers.join(':');
}

/** The dead container's layers, from its snapshot (overlayfs snapshotter, keyed by container ID). */
export function containerLayers(containerId: string, endpoint = DEFAULT_RUNTIME_ENDPOINT): Promise<string> {
  return call(
    endpoint,
    async (api, creds, metadata) => {
      const client = new api.containerd.services.snapshots.v1.Snapshots(endpoint, creds);
      return layersOf((await unary(client, client.Mounts, { snapshotter: 'overlayfs', key: containerId }, metadata)).mounts);
    },
    () => nothingLeft(containerId),
  );
}

/** A dead container that kubelet has removed, with its snapshot. */
export const nothingLeft = (containerId: string) =>
  new NsdebugError(
    `nothing left to inspect: container ${shortId(containerId)} has been removed from the node with its filesystem; use --wait to catch its next start`,
    ExitCode.NOT_FOUND,
  );

/** What containerd keeps of a container: its labels and the OCI runtime spec it was created with. */
export interface ContainerRecord {
  labels: Record<string, string>;
  /** the spec as containerd keeps it (a protobuf Any: its type and JSON text); undefined if it holds none */
  spec?: { typeUrl: string; json: string };
}

/** The type_url containerd gives the spec's Any (typeurl registration of specs.Spec). */
const SPEC_TYPE = /(^|\/)opencontainers\/runtime-spec\/1\/Spec$/;

/** The container's labels and spec; undefined when it does not exist. */
export async function containerRecord(containerId: string, endpoint = DEFAULT_RUNTIME_ENDPOINT): Promise<ContainerRecord | undefined> {
  const gone = new NsdebugError('', ExitCode.NOT_FOUND);
  try {
    return await call(
      endpoint,
      async (api, creds, metadata) => {
        const client = new api.containerd.services.containers.v1.Containers(endpoint, creds);
        const { container } = await unary(client, client.Get, { id: containerId }, metadata);
        const spec = container.spec?.value?.length
          ? { spec: { typeUrl: container.spec.type_url, json: Buffer.from(container.spec.value).toString('utf8') } }
          : {};
        return { labels: container.labels, ...spec };
      },
      () => gone,
    );
  } catch (err) {
    if (err === gone) return undefined;
    throw err;
  }
}

/** The OCI runtime spec of a container record, parsed; an error names what is wrong with it. */
export function ociSpecOf(record: ContainerRecord, containerId: string): unknown {
  const what = `container ${shortId(containerId)}`;
  if (!record.spec) throw new NsdebugError(`containerd holds no OCI spec for ${what}`, ExitCode.ENTER_FAILED);
  if (!SPEC_TYPE.test(record.spec.typeUrl))
    throw new NsdebugError(
      `containerd holds a spec of type ${JSON.stringify(record.spec.typeUrl.slice(0, 120))} for ${what}, not an OCI runtime spec`,
      ExitCode.ENTER_FAILED,
    );
  try {
    return JSON.parse(record.spec.json) as unknown;
  } catch (err) {
    throw new NsdebugError(`the OCI spec containerd holds for ${what} is not JSON: ${(err as Error).message}`, ExitCode.ENTER_FAILED);
  }
}

/** A container's labels (kubelet's io.kubernetes.* among them); undefined when it does not exist. */
export async function containerLabels(
  containerId: string,
  endpoint = DEFAULT_RUNTIME_ENDPOINT,
): Promise<Record<string, string> | undefined> {
  return (await containerRecord(containerId, endpoint))?.labels;
}
