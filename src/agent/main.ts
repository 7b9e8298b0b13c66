// nsdebug-agent: the node-side half of nsdebug, run by the CLI through `kubectl exec` into the
// agent pod (hostPID, privileged). Kept free of heavy imports: every session is a fresh Node
// process, so each subcommand loads only its own modules.
import { writeSync } from 'node:fs';

import { ExitCode } from '../contract.js';
import { describeFailure } from '../errors.js';
import { parseAgentArgs, USAGE } from './args.js';

const note = (line: string) => writeSync(2, `nsdebug-agent: ${line}\n`);

async function main(argv: string[]): Promise<number> {
  const args = parseAgentArgs(argv);
  if (args.operation === 'help') {
    writeSync(1, `${USAGE}\n`);
    return ExitCode.OK;
  }
  switch (args.operation) {
    case 'enter': {
      const { runEnter } = await import('./session.js');
      return runEnter(args, note);
    }
    case 'ps': {
      const { listProcesses, formatProcessTable } = await import('./ps.js');
      const { loadNativeLibrary } = await import('../native/libnsdebug.js');
      const processes = listProcesses(args.containerId, args.podUid, loadNativeLibrary());
      writeSync(1, args.output === 'json' ? `${JSON.stringify(processes)}\n` : formatProcessTable(processes));
      return ExitCode.OK;
    }
    case 'ns': {
      const { listPodNamespaces } = await import('./namespaces.js');
      writeSync(1, `${JSON.stringify(listPodNamespaces(args.podUid))}\n`);
      return ExitCode.OK;
    }
    case 'cp': {
      const { runCopy } = await import('./copy.js');
      return runCopy(args);
    }
    case 'info': {
      const { collectInfo, formatInfo } = await import('./info.js');
      const info = await collectInfo({ serving: true });
      writeSync(1, args.output === 'json' ? `${JSON.stringify(info)}\n` : formatInfo(info));
      return args.check && info.checks.some((c) => !c.ok) ? ExitCode.AGENT_UNAVAILABLE : ExitCode.OK;
    }
    case 'kill': {
      const { killSession } = await import('./live-sessions.js');
      await killSession(args.session, 'kubectl nsdebug sessions kill');
      writeSync(1, `${JSON.stringify({ killed: args.session })}\n`);
      return ExitCode.OK;
    }
    case 'recording': {
      const { readRecording, recordingPolicy } = await import('./recording.js');
      const recording = readRecording(recordingPolicy(), args.session);
      for (let at = 0; at < recording.length;) at += writeSync(1, recording, at);
      return ExitCode.OK;
    }
    case 'serve': {
      const { serve } = await import('./serve.js');
      return serve({ maxSessionMs: args.maxSessionMs });
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const { line, exitCode } = describeFailure(err, process.env.NSDEBUG_DEBUG === '1');
    writeSync(2, `nsdebug-agent: ${line.replace(/^error: /, '')}\n`);
    process.exit(exitCode);
  },
);
