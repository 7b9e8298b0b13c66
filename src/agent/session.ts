// One `enter` session as a per-session agent process runs it (no resident serve to hand it to):
// signals that end it early, and its audit record. With --framed its stdin and stdout carry
// session frames, relayed as serve relays them.
import type { SessionEnded, SessionRequest } from '../contract.js';
import { loadNativeLibrary } from '../native/libnsdebug.js';
import { DEFAULT_MAX_SESSION_MS } from './args.js';
import { openAuditChannel, sessionRecord } from './audit.js';
import { enter, processIo } from './enter.js';
import { pipeLink, runFramedSession } from './resident.js';
import { removeStaleSessions } from './session-cgroup.js';

export async function runEnter(req: SessionRequest, note: (line: string) => void): Promise<number> {
  const native = loadNativeLibrary();
  // A session whose agent process was SIGKILLed leaves an empty cgroup behind: tidy it now.
  await removeStaleSessions().catch(() => undefined);
  const audit = await openAuditChannel();
  // SIGTERM (pod shutdown), SIGHUP (terminal gone), SIGINT: end the session, tell the user.
  const stopping = new Promise<SessionEnded>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const)
      process.once(sig, () => resolve({ reason: 'agent stopping', message: `the agent received ${sig}` }));
  });
  const startedAt = new Date();
  const record = sessionRecord(req);
  if (req.framed) {
    try {
      const onStop = (listener: (end: SessionEnded) => void) => {
        void stopping.then(listener);
        return () => undefined;
      };
      return await runFramedSession(pipeLink(0, 1), req, native, (r) => audit.send({ event: 'end', ...r }), {
        onStop,
        maxSessionMs: DEFAULT_MAX_SESSION_MS,
      });
    } finally {
      await audit.close();
    }
  }
  let ended: SessionEnded | undefined;
  try {
    const outcome = await enter(req, {
      native,
      io: processIo,
      note,
      abort: stopping.then((end) => (ended = end)),
      onStart: (target, joined) =>
        audit.send({ event: 'start', ...record, hostPid: target.pid, namespaces: joined, start: startedAt.toISOString() }),
    });
    if (ended) note(`session ended: ${ended.message}`);
    audit.send({ event: 'end', ...record, end: new Date().toISOString(), exitCode: outcome.exitCode, ended: ended?.reason ?? 'exit' });
    return outcome.exitCode;
  } catch (err) {
    audit.send({ event: 'end', ...record, end: new Date().toISOString(), exitCode: null, error: (err as Error).message });
    throw err;
  } finally {
    await audit.close();
  }
}
