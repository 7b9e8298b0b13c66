// The parts of @kubernetes/client-node that nsdebug uses, and only they: the CLI's bundle
// (build/cli.mjs) keeps what this module names, about half of the package (its generated
// models and API classes are most of it). Imported through clientNode() in config.ts.
export {
  AdmissionregistrationV1Api,
  AppsV1Api,
  AuthenticationV1Api,
  AuthorizationV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
} from '@kubernetes/client-node';
export { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
