// One `enter` session as the agent runs it: signals that end it early, and its audit record.
import { loadNativeLibrary } from '../native/libnsdebug.js';
import type { AgentArgs } from './args.js';
import { openAuditChannel, sessionRecord } from './audit.js';
import { enter, enterOptions, processIo } from './enter.js';
import { removeStaleSessions } from './session-cgroup.js';

export async function runEnter(args: AgentArgs, note: (line: string) => void): Promise<number> {
  const native = loadNativeLibrary();
  // A session whose agent process was SIGKILLed leaves an empty cgroup behind: tidy it now.
  await removeStaleSessions().catch(() => undefined);
  const audit = await openAuditChannel();
  // SIGTERM (pod shutdown), SIGHUP (terminal gone), SIGINT: end the session, tell the user.
  const abort = new Promise<string>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.once(sig, () => resolve(`the agent received ${sig}`));
  });
  const startedAt = new Date();
  const record = sessionRecord(args);
  try {
    const outcome = await enter(enterOptions(args), {
      native,
      io: processIo,
      note,
      abort,
      onStart: (target, joined) =>
        audit.send({ event: 'start', ...record, hostPid: target.pid, namespaces: joined, start: startedAt.toISOString() }),
    });
    audit.send({ event: 'end', ...record, end: new Date().toISOString(), exitCode: outcome.exitCode });
    return outcome.exitCode;
  } catch (err) {
    audit.send({ event: 'end', ...record, end: new Date().toISOString(), exitCode: null, error: (err as Error).message });
    throw err;
  } finally {
    await audit.close();
  }
}
