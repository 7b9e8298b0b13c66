// `enter --wait`: catch a container's next start. The runtime creates the new instance's cgroup
// directory in the pod's before it starts it; the agent watches that directory (inotify, with a
// rescan as a safety net), confirms through containerd's labels that the new ID is this
// container of this pod, and returns once the instance's own process runs (runc's init has
// exec'd it), so a container that lives a second can still be entered.
import { watch, readdirSync, readFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';

import { ExitCode } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { CONTAINER_ID, containerIdOf, podCgroupDirs, readCgroupProcs } from './cgroups.js';
import { containerLabels } from './containerd.js';
import { PROC } from './procfs.js';

export interface WaitOptions {
  podUid: string;
  /** the container's name in the pod spec */
  container: string;
  /** the instance to skip: the one that runs or ran before */
  skip?: string;
  timeoutMs: number;
  runtimeEndpoint?: string;
  /** resolves when the wait must end early (client gone, agent shutdown) */
  abort?: Promise<string>;
}

const childIds = (dir: string): string[] => {
  try {
    return readdirSync(dir)
      .map((name) => containerIdOf(name))
      .filter((id): id is string => id !== undefined && CONTAINER_ID.test(id));
  } catch {
    return [];
  }
};

/** The instance's own process runs: one of its processes is past runc's init. */
function started(dir: string): boolean {
  try {
    return readCgroupProcs(dir).some((pid) => {
      try {
        return !readFileSync(`${PROC}/${pid}/comm`, 'utf8').startsWith('runc');
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** The ID of the container's next instance, once its process runs. */
export async function waitForStart(opts: WaitOptions): Promise<string> {
  const [dir] = podCgroupDirs(opts.podUid);
  if (!dir) throw new NsdebugError(`pod ${opts.podUid} has no cgroup on this node: it is gone or not started yet`, ExitCode.NOT_FOUND);
  const seen = new Set(childIds(dir));
  if (opts.skip) seen.add(opts.skip);
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  try {
    return await new Promise<string>((resolve, reject) => {
      const fail = (err: unknown) => {
        settled = true;
        reject(err);
      };
      let checking = false;
      const check = async () => {
        if (settled || checking) return;
        checking = true;
        try {
          for (const id of childIds(dir).filter((x) => !seen.has(x))) {
            seen.add(id);
            const labels = await containerLabels(id, opts.runtimeEndpoint);
            if (labels?.['io.kubernetes.pod.uid'] !== opts.podUid || labels['io.kubernetes.container.name'] !== opts.container) continue;
            const instance = readdirSync(dir).find((name) => containerIdOf(name) === id);
            // The instance's process exists within milliseconds of its directory: look closely.
            while (!settled && instance && !started(join(dir, instance))) await new Promise((r) => setTimeout(r, 2));
            settled = true;
            resolve(id);
            return;
          }
        } catch (err) {
          fail(err);
        } finally {
          checking = false;
        }
      };
      watcher = watch(dir, () => void check());
      watcher.on('error', fail);
      // inotify may miss a directory made before the watch took: rescan, and as a safety net.
      timer = setInterval(() => void check(), 250);
      void check();
      setTimeout(
        () =>
          fail(
            new NsdebugError(
              `container ${opts.container} did not start within ${Math.round(opts.timeoutMs / 1000)} s; try a longer --timeout`,
              ExitCode.NOT_RUNNING,
            ),
          ),
        opts.timeoutMs,
      ).unref();
      void opts.abort?.then((reason) => fail(new NsdebugError(`stopped waiting: ${reason}`, ExitCode.NOT_RUNNING)));
    });
  } finally {
    watcher?.close();
    if (timer) clearInterval(timer);
  }
}
