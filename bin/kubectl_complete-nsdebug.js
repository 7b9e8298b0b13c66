#!/usr/bin/env node
// kubectl_complete-nsdebug without the start-up snapshot: see bin/kubectl-nsdebug.js.
import { requireNode } from './require-node.js';

requireNode('kubectl_complete-nsdebug');
await import('../dist/cli/nsdebug.cjs');
