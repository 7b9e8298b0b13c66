#!/usr/bin/env node
// kubectl_complete-nsdebug: kubectl (>= 1.26) runs it, when it is on PATH beside kubectl-nsdebug,
// to complete `kubectl nsdebug <TAB>`. bin/kubectl_complete-nsdebug links here for a checkout.
// See src/cli/complete.ts.
import { requireNode } from './require-node.js';

requireNode('kubectl_complete-nsdebug');
const { printCompletion } = await import('../dist/src/cli/complete.js');
await printCompletion(process.argv.slice(2));
