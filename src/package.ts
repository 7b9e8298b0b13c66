// Where the installed package is: the directory with nsdebug's package.json, bin/, native/ and
// deploy/. Found by walking up from the running module, not by a fixed number of `..`: the same
// code runs as tsc's dist/src/*/ files, from a checkout's sources (ts-jest) and inlined into the
// bundles in dist/agent/ and dist/cli/, each at a different depth below the root.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root: the nearest directory above this module with nsdebug's package.json. */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'nsdebug') return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find nsdebug's package.json above ${from}`);
  }
}
