#!/usr/bin/env node
// nsdebug-agent: runs in the privileged DaemonSet pod; see src/agent/main.ts.
import '../dist/src/agent/main.js';
