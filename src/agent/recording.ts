// Session recording, when the cluster turns it on (install --record, the Helm chart's
// recording.*): a TTY session as asciicast v2 (timed output, its window size changes, its input
// only with --record-input), a session without a TTY as its argv, byte counts and exit code.
// Stored in a hostPath directory the admin names, capped in size (the oldest recordings go
// first), or written to the agent's log as JSON lines. `kubectl nsdebug replay` plays one back.
// Recording never fails a session: a recording that cannot be written stops, with a warning.
import { closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

import { DEFAULT_RECORDING_DIR, ExitCode, SESSION_ID, type RecordingSettings, type SessionRequest } from '../contract.js';
import { NsdebugError } from '../errors.js';

/** What the DaemonSet asks for, from its environment. */
export type RecordingPolicy = RecordingSettings;

const DEFAULT_MAX_BYTES = 1 << 30;
/** One recording's own cap: a share of the directory's, so one session cannot push out all the others. */
const SHARE_OF_CAP = 4;

/** NSDEBUG_RECORD=hostpath|log (unset or off: no recording), NSDEBUG_RECORD_DIR, _MAX_BYTES, _INPUT, _SCOPE. */
export function recordingPolicy(env = process.env): RecordingPolicy | undefined {
  const to = env.NSDEBUG_RECORD;
  if (!to || to === 'off') return undefined;
  if (to !== 'hostpath' && to !== 'log')
    throw new NsdebugError(`NSDEBUG_RECORD must be off, hostpath or log, not ${JSON.stringify(to)}`, ExitCode.USAGE);
  const maxBytes = env.NSDEBUG_RECORD_MAX_BYTES ? Number(env.NSDEBUG_RECORD_MAX_BYTES) : DEFAULT_MAX_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1 << 20)
    throw new NsdebugError('NSDEBUG_RECORD_MAX_BYTES must be a number of bytes, at least 1 MiB', ExitCode.USAGE);
  const scope = env.NSDEBUG_RECORD_SCOPE ?? 'all';
  if (scope !== 'all' && scope !== 'labelled')
    throw new NsdebugError(`NSDEBUG_RECORD_SCOPE must be all or labelled, not ${JSON.stringify(scope)}`, ExitCode.USAGE);
  return { to, dir: env.NSDEBUG_RECORD_DIR ?? DEFAULT_RECORDING_DIR, maxBytes, input: env.NSDEBUG_RECORD_INPUT === '1', scope };
}

/** What the session's relays feed a recording. */
export interface SessionRecorder {
  /** the recording's name (the session's ID): what the user is told and `replay` takes */
  readonly name: string;
  output(chunk: Buffer): void;
  errors(chunk: Buffer): void;
  input(chunk: Buffer): void;
  resize(rows: number, cols: number): void;
  /** the session is over: the recording is complete */
  finish(exitCode: number | null): void;
}

/** Where a recording's lines go: a file below the policy's directory, or the agent's log. */
interface LineSink {
  write(line: string): boolean;
  close(): void;
}

/** The recording's file, after making room for it below the cap (oldest recordings first). */
function fileSink(policy: RecordingPolicy, name: string, warn: (msg: string) => void): LineSink {
  mkdirSync(policy.dir, { recursive: true, mode: 0o700 });
  rotate(policy.dir, policy.maxBytes - policy.maxBytes / SHARE_OF_CAP);
  const fd = openSync(join(policy.dir, name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  let written = 0;
  let full = false;
  return {
    write(line) {
      if (full) return false;
      const bytes = Buffer.from(line);
      if (written + bytes.length > policy.maxBytes / SHARE_OF_CAP) {
        full = true;
        warn(`recording ${name} reached its cap (${policy.maxBytes / SHARE_OF_CAP} bytes): the rest of the session is not recorded`);
        return false;
      }
      writeSync(fd, bytes);
      written += bytes.length;
      return true;
    },
    close: () => closeSync(fd),
  };
}

/** Remove the oldest recordings until the directory holds at most keepBytes. */
export function rotate(dir: string, keepBytes: number): string[] {
  const files = readdirSync(dir)
    .filter((f) => /^[0-9a-f]{10}\.(cast|json)$/.test(f))
    .map((f) => ({ f, st: statSync(join(dir, f)) }))
    .sort((a, b) => a.st.mtimeMs - b.st.mtimeMs);
  let total = files.reduce((sum, { st }) => sum + st.size, 0);
  const removed: string[] = [];
  for (const { f, st } of files) {
    if (total <= keepBytes) break;
    rmSync(join(dir, f), { force: true });
    total -= st.size;
    removed.push(f);
  }
  return removed;
}

/** The agent's log: one JSON object per recording line, tagged with the session. */
const logSink = (name: string, log: (fields: Record<string, unknown>) => void): LineSink => ({
  write(line) {
    log({ recording: name, line: JSON.parse(line) as unknown });
    return true;
  },
  close: () => undefined,
});

export interface RecordingContext {
  id: string;
  req: SessionRequest;
  started: Date;
  /** the agent's structured log (recordings to the log, and warnings) */
  log: (level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => void;
}

/** A recorder for the session, writing where policy says. */
export function startRecording(policy: RecordingPolicy, ctx: RecordingContext): SessionRecorder {
  const { id, req, started } = ctx;
  if (!SESSION_ID.test(id)) throw new NsdebugError(`internal: recording name ${JSON.stringify(id)}`, ExitCode.INTERNAL);
  const warn = (msg: string) => ctx.log('warn', msg, { session: id });
  const name = `${id}.${req.tty ? 'cast' : 'json'}`;
  let sink: LineSink | undefined;
  try {
    sink = policy.to === 'hostpath' ? fileSink(policy, name, warn) : logSink(name, (fields) => ctx.log('info', 'recording', fields));
  } catch (err) {
    warn(`cannot record session ${id}: ${(err as Error).message}`);
  }
  const seconds = () => Number(((Date.now() - started.getTime()) / 1000).toFixed(6));
  const target = req.node ? `node/${req.node}` : `${req.pod ?? '?'}:${req.container ?? '?'}`;
  const counts = { stdin: 0, stdout: 0, stderr: 0 };
  const line = (value: unknown) => {
    try {
      sink?.write(`${JSON.stringify(value)}\n`);
    } catch (err) {
      warn(`recording ${id} stopped: ${(err as Error).message}`);
      sink = undefined;
    }
  };
  // asciicast events are text: a UTF-8 sequence split across chunks is joined, not mangled
  const out = new StringDecoder('utf8');
  const typed = new StringDecoder('utf8');
  if (req.tty)
    line({
      version: 2,
      width: 80,
      height: 24,
      timestamp: Math.floor(started.getTime() / 1000),
      title: `nsdebug session ${id}: ${target}`,
      env: { TERM: process.env.TERM ?? 'xterm-256color' },
      command: req.command.join(' ') || 'sh',
    });
  return {
    name: id,
    output(chunk) {
      counts.stdout += chunk.length;
      if (req.tty) line([seconds(), 'o', out.write(chunk)]);
    },
    errors(chunk) {
      counts.stderr += chunk.length;
    },
    input(chunk) {
      counts.stdin += chunk.length;
      if (req.tty && policy.input) line([seconds(), 'i', typed.write(chunk)]);
    },
    resize(rows, cols) {
      if (req.tty) line([seconds(), 'r', `${cols}x${rows}`]);
    },
    finish(exitCode) {
      if (!req.tty)
        line({
          session: id,
          target,
          argv: req.command,
          start: started.toISOString(),
          end: new Date().toISOString(),
          bytes: counts,
          exitCode,
        });
      else {
        const rest = out.end();
        if (rest) line([seconds(), 'o', rest]);
      }
      try {
        sink?.close();
      } catch {
        // closed already
      }
    },
  };
}

/** serve's recording: its policy, its log, and (scope labelled) how to read a namespace's labels. */
interface Configured {
  policy: RecordingPolicy;
  log: RecordingContext['log'];
  namespaceLabels?: (namespace: string) => Promise<Record<string, string>>;
}

let configured: Configured | undefined;
const labelled = new Map<string, { recorded: boolean; at: number }>();
/** How long a namespace's label is believed: a label set or removed takes effect within this. */
const LABEL_TTL_MS = 30_000;
export const RECORD_LABEL = 'nsdebug.io/record';

/** serve, at start: record from now on as policy says. */
export function configureRecording(config: Configured | undefined): void {
  configured = config;
  labelled.clear();
}

/** Whether sessions into namespace are recorded under a labelled scope (its label, cached). */
async function namespaceRecorded(namespace: string, config: Configured): Promise<boolean> {
  const known = labelled.get(namespace);
  if (known && Date.now() - known.at < LABEL_TTL_MS) return known.recorded;
  let recorded = false;
  try {
    recorded = (await config.namespaceLabels?.(namespace))?.[RECORD_LABEL] === 'true';
  } catch (err) {
    // not knowing is not recording: say so in the log, where the admin looks
    config.log('warn', 'cannot read a namespace label for recording', { namespace, error: (err as Error).message });
  }
  labelled.set(namespace, { recorded, at: Date.now() });
  return recorded;
}

/** The recorder of a starting session, or undefined when it is not recorded. */
export async function recorderFor(id: string, req: SessionRequest, started: Date): Promise<SessionRecorder | undefined> {
  const config = configured;
  if (!config) return undefined;
  if (config.policy.scope === 'labelled') {
    const namespace = req.pod?.split('/')[0];
    if (!namespace || !(await namespaceRecorded(namespace, config))) return undefined;
  }
  return startRecording(config.policy, { id, req, started, log: config.log });
}

/** `nsdebug-agent recording --session ID`: a recording from the policy's directory, to stdout. */
export function readRecording(policy: RecordingPolicy | undefined, id: string): Buffer {
  if (!policy) throw new NsdebugError('this agent does not record sessions (kubectl nsdebug install --record)', ExitCode.NOT_FOUND);
  if (policy.to === 'log')
    throw new NsdebugError(
      'this agent records to its log: read it with kubectl logs -n nsdebug-system AGENT_POD | grep \'"recording"\'',
      ExitCode.NOT_FOUND,
    );
  for (const ext of ['cast', 'json']) {
    const path = join(policy.dir, `${id}.${ext}`);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      continue;
    }
    try {
      return readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  throw new NsdebugError(`no recording of session ${id} on this node (rotated out, or recorded elsewhere)`, ExitCode.NOT_FOUND);
}
