// `kubectl nsdebug replay ID`: a recorded session played back in the terminal, as it was shown
// (asciicast v2: its output at its pace, times --speed, long pauses shortened to --idle-limit), or
// with --raw its output bytes at once, for a pager or a file. A session without a TTY was
// recorded as its argv, byte counts and exit code: those are printed. The recording comes from
// the agent of the session's node (`nsdebug-agent recording`), as a session would reach it.
import { setTimeout as sleep } from 'node:timers/promises';

import { ExitCode, SESSION_ID } from '../contract.js';
import { usageError } from '../errors.js';
import { findAgent } from '../kube/agent.js';
import { parseRequestTimeout } from '../kube/config.js';
import { DNS_SUBDOMAIN } from '../names.js';
import { escapeLine } from './escape.js';
import { processIo, type CliIo } from './io.js';
import { connectionOptions, DEFAULT_AGENT_NAMESPACE, validateAgentNamespace, type KubeFlags } from './options.js';
import { realSessionsCluster, type SessionsCluster } from './sessions.js';

export interface ReplayFlags extends Omit<KubeFlags, 'namespace'> {
  id?: string;
  node?: string;
  speed?: string;
  'idle-limit'?: string;
  raw?: boolean;
  'agent-namespace'?: string;
}

export interface ReplayOptions {
  id: string;
  /** the node the session ran on: its recording is there */
  node: string;
  speed: number;
  idleLimitSeconds: number;
  raw: boolean;
  agentNamespace: string;
  kube: ReturnType<typeof connectionOptions>;
}

export function completeReplay(flags: ReplayFlags): ReplayOptions {
  return {
    id: flags.id ?? '',
    node: flags.node ?? '',
    speed: Number(flags.speed ?? '1'),
    idleLimitSeconds: Number(flags['idle-limit'] ?? '2'),
    raw: flags.raw === true,
    agentNamespace: flags['agent-namespace'] ?? DEFAULT_AGENT_NAMESPACE,
    kube: connectionOptions(flags),
  };
}

export function validateReplay(opts: ReplayOptions): void {
  if (!SESSION_ID.test(opts.id))
    throw usageError(
      `name a recorded session by its ID (10 hex digits, as its notice and \`kubectl nsdebug sessions\` show it), not "${opts.id.slice(0, 40)}"`,
    );
  if (!DNS_SUBDOMAIN.test(opts.node))
    throw usageError(
      `--node must name the node the session ran on (its "this session is recorded" notice and the agent's audit line say it), not "${opts.node.slice(0, 80)}"`,
    );
  if (!(opts.speed > 0 && opts.speed <= 100)) throw usageError('--speed must be a number above 0, at most 100 (2: twice as fast)');
  if (!(opts.idleLimitSeconds > 0)) throw usageError('--idle-limit must be a number of seconds above 0');
  validateAgentNamespace(opts.agentNamespace);
  if (opts.kube.requestTimeout !== undefined) parseRequestTimeout(opts.kube.requestTimeout);
}

/** An asciicast v2 recording: its header and its events ([seconds, type, data]). */
export interface Cast {
  header: { version: number; width?: number; height?: number; title?: string; timestamp?: number };
  events: Array<[number, string, string]>;
}

/** A recording as the agent wrote it: asciicast v2 lines, or one JSON object (no TTY). */
export function parseRecording(text: string): Cast | { summary: Record<string, unknown> } {
  const lines = text.split('\n').filter(Boolean);
  const first = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  if (first.version !== 2) return { summary: first };
  const events: Cast['events'] = [];
  for (const line of lines.slice(1)) {
    const event = JSON.parse(line) as unknown;
    if (Array.isArray(event) && typeof event[0] === 'number' && typeof event[1] === 'string' && typeof event[2] === 'string')
      events.push(event as [number, string, string]);
  }
  return { header: first as Cast['header'], events };
}

/** Play the output events: each after its pause (divided by speed, at most idleLimit seconds). */
export async function playCast(
  cast: Cast,
  write: (text: string) => void,
  opts: { speed: number; idleLimitSeconds: number; raw: boolean },
  wait: (ms: number) => Promise<unknown> = sleep,
): Promise<void> {
  let last = 0;
  for (const [at, type, data] of cast.events) {
    if (type !== 'o') continue;
    if (!opts.raw) {
      const pause = Math.min(Math.max(at - last, 0), opts.idleLimitSeconds) / opts.speed;
      if (pause > 0.001) await wait(pause * 1000);
    }
    last = at;
    write(data);
  }
}

export async function runReplay(
  flags: ReplayFlags,
  io: Pick<CliIo, 'stdout' | 'stderr'> = processIo(),
  cluster: SessionsCluster = realSessionsCluster,
): Promise<number> {
  const opts = completeReplay(flags);
  validateReplay(opts);
  const conn = await cluster.loadKubeConfig(opts.kube);
  const agent = await findAgent(opts.node, opts.agentNamespace, await cluster.agentClient(conn));
  const recording = parseRecording((await (await cluster.sessionsClient(conn)).recording(agent, opts.id)).toString('utf8'));
  if ('summary' in recording) {
    // the argv is the user's, the counts the agent's: shown, never obeyed by the terminal
    io.stdout.write(`${JSON.stringify(recording.summary, null, 2).split('\n').map(escapeLine).join('\n')}\n`);
    return ExitCode.OK;
  }
  const { header } = recording;
  if (!opts.raw)
    io.stderr.write(
      `${escapeLine(`${header.title ?? `session ${opts.id}`}, recorded ${header.timestamp ? new Date(header.timestamp * 1000).toISOString() : '?'}`)}\n`,
    );
  // what the session showed, as it showed it: the terminal's own escape sequences included
  await playCast(recording, (text) => io.stdout.write(text), opts);
  return ExitCode.OK;
}
