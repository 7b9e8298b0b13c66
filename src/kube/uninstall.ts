// `kubectl nsdebug uninstall`: delete every object install creates (session authorization's
// too), in reverse apply order and only those labelled as nsdebug's, then wait until they are gone.
import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import type { InstallClient, InstallIO } from './install.js';
import type { KubeObject } from './kustomize.js';
import { deployManifests, objectRef, PART_OF, renderManifests } from './manifests.js';
import { clockOf, DEFAULT_TIMEOUT_MS, formatDuration, POLL_MS } from './rollout.js';

export interface UninstallOptions {
  namespace?: string;
  wait?: boolean;
  timeoutMs?: number;
  /** the manifests; default: deploy/ of this package and deploy/session-auth/ */
  manifests?: KubeObject[];
}

/** Delete what install created; the number of objects deleted (0: nsdebug was not installed). */
export async function uninstall(opts: UninstallOptions, client: Pick<InstallClient, 'get' | 'remove'>, io: InstallIO): Promise<number> {
  const manifests = opts.manifests ?? (await deployManifests({ sessionAuth: true }));
  const objects = renderManifests(manifests, opts).reverse();
  const deleted: KubeObject[] = [];
  for (const o of objects) {
    const found = await client.get(o);
    if (!found) continue;
    if (found.metadata.labels?.[PART_OF.key] !== PART_OF.value) {
      io.out(`${objectRef(o)} kept: it is not labelled ${PART_OF.key}=${PART_OF.value}, so nsdebug did not create it`);
      continue;
    }
    if (await client.remove(o)) {
      deleted.push(o);
      io.out(`${objectRef(o)} deleted`);
    }
  }
  if (!deleted.length) {
    io.out('nsdebug is not installed: nothing to remove');
    return 0;
  }
  if (opts.wait === false) return deleted.length;
  const { sleep, now } = clockOf(io);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = now() + timeoutMs;
  let shown = '';
  for (;;) {
    const left = (await Promise.all(deleted.map(async (o) => ((await client.get(o)) ? o : undefined)))).filter((o): o is KubeObject =>
      Boolean(o),
    );
    if (!left.length) return deleted.length;
    const waiting = `waiting for ${left.map(objectRef).join(', ')} to be deleted`;
    if (now() >= deadline) {
      throw new NsdebugError(
        `still being deleted after ${formatDuration(timeoutMs)}: ${left.map(objectRef).join(', ')}; check them with kubectl, or wait longer with --timeout`,
        ExitCode.INTERNAL,
      );
    }
    if (waiting !== shown) io.progress?.(waiting);
    shown = waiting;
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - now())));
  }
}
