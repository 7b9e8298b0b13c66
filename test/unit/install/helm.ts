// The helm client for render tests: $NSDEBUG_HELM, `helm` on PATH, or one built from Go modules
// into /var/cache/nsdebug/bin (the Go module proxy is reachable where these tests run; the first
// build takes a few minutes, later runs reuse it).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const HELM_VERSION = 'v3.22.0';
const CACHE_BIN = '/var/cache/nsdebug/bin';
/** Labels the chart adds for Helm's bookkeeping; everything else equals deploy/. */
export const HELM_LABELS = ['app.kubernetes.io/instance', 'app.kubernetes.io/managed-by', 'helm.sh/chart'];

function onPath(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export async function findOrBuildHelm(): Promise<string | undefined> {
  const known = [process.env.NSDEBUG_HELM, onPath('helm'), `${CACHE_BIN}/helm`].find((p): p is string => Boolean(p && existsSync(p)));
  if (known) return known;
  const go = onPath('go') ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) return undefined;
  console.warn(`building helm ${HELM_VERSION} from Go modules into ${CACHE_BIN} (once)`);
  const { execa } = await import('execa');
  await execa(go, ['install', `helm.sh/helm/v3/cmd/helm@${HELM_VERSION}`], {
    env: { GOBIN: CACHE_BIN, GOFLAGS: '-mod=mod' },
    stdio: 'inherit',
  });
  return `${CACHE_BIN}/helm`;
}
