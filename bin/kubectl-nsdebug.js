#!/usr/bin/env node
// kubectl-nsdebug: kubectl runs it as `kubectl nsdebug …` when it is on PATH (bin/kubectl-nsdebug
// links here for a checkout; npm's bin map names it so when installed). See src/cli/main.ts.
// The CLI loads only once the Node.js version is known to run it.
import { requireNode } from './require-node.js';

requireNode('kubectl-nsdebug');
const { main } = await import('../dist/src/cli/main.js');
await main(process.argv.slice(2), import.meta.url);
