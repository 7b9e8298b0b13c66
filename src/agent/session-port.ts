// The session port (session authorization mode): 127.0.0.1:SESSION_PORT in the agent pod, which
// nothing reaches but pods/portforward through the API server. One TCP connection is one session:
// a HELLO frame naming a DebugSession and its secret, then the session frames of src/contract.ts,
// relayed by src/agent/session-relay.ts as for any other session. The session also ends when its
// DebugSession is deleted (revoked).
import { createServer, type Server } from 'node:net';

import { ExitCode, Frame, SESSION_PORT, type SessionEnded } from '../contract.js';
import { describeFailure, NsdebugError } from '../errors.js';
import type { NativeLibrary } from '../native/libnsdebug.js';
import type { InClusterApi } from './apiserver.js';
import { authorizeSession, deleteSession, parseHello, watchRevocation, type AuthorizedSession } from './debug-session.js';
import { agentEndings, countedSession, type SessionLimits, type SessionLog } from './resident.js';
import { SessionLink, type SessionLinkOptions } from './session-link.js';
import { closingFrames, relayQuery, relaySession, type RelayOutcome } from './session-relay.js';

const HELLO_TIMEOUT_MS = 5000;
/** How long a refused client has to read its one line and exit code. */
const REFUSED_WAIT_MS = 2000;
/** Connections served at once; more are dropped by the kernel's accept (net.Server.maxConnections). */
export const MAX_CONNECTIONS = 64;

export interface SessionPortOptions {
  api: InClusterApi;
  /** this agent's node: only pods bound to it are served */
  node: string;
  port?: number;
  host?: string;
  /** heartbeat timing, for tests */
  link?: SessionLinkOptions;
}

export async function startSessionPort(
  native: NativeLibrary,
  audit: SessionLog,
  limits: SessionLimits,
  opts: SessionPortOptions,
): Promise<Server> {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    void countedSession(native, () => serveConnection(new SessionLink(socket, socket, opts.link), native, audit, limits, opts));
  });
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? SESSION_PORT, opts.host ?? '127.0.0.1', resolve);
  });
  return server;
}

/** The first frame, which must be the HELLO, within HELLO_TIMEOUT_MS. */
function readHello(link: SessionLink): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new NsdebugError('no session request arrived', ExitCode.USAGE)), HELLO_TIMEOUT_MS);
    // a client that leaves before its request ends here too, not in a promise left pending
    void link.gone.then((end) => {
      clearTimeout(timer);
      reject(new NsdebugError(end.message, ExitCode.USAGE));
    });
    link.receive((frame) => {
      if (frame.type === Frame.HEARTBEAT) return;
      clearTimeout(timer);
      // until the session takes them, the frames after the hello wait in the link (bounded)
      link.receive();
      if (frame.type === Frame.HELLO) resolve(frame.payload);
      else reject(new NsdebugError('the first frame was not a session request', ExitCode.USAGE));
    });
  });
}

async function serveConnection(
  link: SessionLink,
  native: NativeLibrary,
  audit: SessionLog,
  limits: SessionLimits,
  opts: SessionPortOptions,
): Promise<void> {
  let sessionObject: AuthorizedSession['session'] | undefined;
  let outcome: RelayOutcome;
  const endings = agentEndings(limits);
  let revocation: { revoked: Promise<SessionEnded>; stop: () => void } | undefined;
  try {
    const payload = await readHello(link);
    const authorized = await authorizeSession(opts.api, parseHello(payload), opts.node);
    sessionObject = authorized.session;
    revocation = watchRevocation(opts.api, authorized.session);
    const { request, record } = authorized;
    outcome =
      request.operation === 'enter'
        ? await relaySession(link, request, record, native, audit, Promise.race([endings.ended, revocation.revoked]))
        : { exitCode: await relayQuery(link, request, record, native, audit) };
  } catch (err) {
    const { line, exitCode } = describeFailure(err);
    link.send(Frame.STDERR, Buffer.from(`nsdebug-agent: ${line.replace(/^error: /, '')}\n`));
    if (!sessionObject) audit({ event: 'refused', error: line.replace(/^error: /, '') });
    outcome = { exitCode };
  } finally {
    endings.cancel();
    revocation?.stop();
  }
  // Once the exit code is sent the connection is over; a refused client gets little time to read it.
  const finished = link.finish(closingFrames(outcome.exitCode, outcome.ended), sessionObject ? undefined : REFUSED_WAIT_MS);
  // A claimed DebugSession is spent: gone once its session is over, however the client ended.
  if (sessionObject) {
    await deleteSession(opts.api, sessionObject).catch((err: Error) =>
      audit({ event: 'warning', msg: 'could not delete a DebugSession', error: err.message }),
    );
  }
  await finished;
}
