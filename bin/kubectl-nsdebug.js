#!/usr/bin/env node
// kubectl-nsdebug without the start-up snapshot (bin/kubectl-nsdebug runs this when the snapshot
// was built by another node, or not at all): the CLI's bundle, loaded from its file, runs the
// executable argv[1] names. It loads only once the Node.js version is known to run it.
import { requireNode } from './require-node.js';

requireNode('kubectl-nsdebug');
await import('../dist/cli/nsdebug.cjs');
