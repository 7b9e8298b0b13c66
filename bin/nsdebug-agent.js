#!/usr/bin/env node
// nsdebug-agent: runs in the privileged DaemonSet pod; see src/agent/main.ts. It runs the agent's
// bundle (`npm run build:agent`, build/agent.mjs), the one the image ships.
import '../dist/agent/nsdebug-agent.js';
