// The parts of @kubernetes/client-node that nsdebug uses, and only they: the CLI's bundle
// (build/cli.mjs) keeps what this module names: 2.5 MB of the 4.2 MB the whole package bundles
// to (its generated models and API classes are most of it). Imported through clientNode() in config.ts.
export {
  AdmissionregistrationV1Api,
  AppsV1Api,
  AuthenticationV1Api,
  AuthorizationV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
} from '@kubernetes/client-node';
export { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
