#!/usr/bin/env node
// kubectl-nsdebug: kubectl runs it as `kubectl nsdebug …` when it is on PATH (bin/kubectl-nsdebug
// links here for a checkout; npm's bin map names it so when installed). See src/cli/main.ts.
import { main } from '../dist/src/cli/main.js';

await main(process.argv.slice(2), import.meta.url);
