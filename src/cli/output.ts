// Output helpers: kubectl-style columns, ps's table and times, the JSON the agent prints, and a
// pass-through stream that notices the agent's own `nsdebug-agent: …` lines among a session's
// output (so an exit code in nsdebug's block can be told apart from the remote command's).
import { Writable } from 'node:stream';

import { ExitCode, type ProcessInfo } from '../contract.js';
import { NsdebugError } from '../errors.js';
import { formatTable } from '../text.js';
import { escapeLine } from './escape.js';

/**
 * Columns three spaces apart, like `kubectl get`. Cells are the cluster's and the containers'
 * text (command lines, users): control characters escaped.
 */
export const formatColumns = (header: string[], cells: string[][]): string =>
  formatTable(
    header,
    cells.map((r) => r.map(escapeLine)),
    3,
  );

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number) => String(n).padStart(2, '0');

/** ps's START: HH:MM within the last 24 hours, else "Nov22"; in the local time zone of `now`. */
export function formatStart(iso: string, now: Date = new Date()): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return '?';
  if (now.getTime() - t.getTime() < 24 * 3600 * 1000) return `${pad2(t.getHours())}:${pad2(t.getMinutes())}`;
  return `${MONTHS[t.getMonth()]}${pad2(t.getDate())}`;
}

export const PS_HEADER = ['HOST PID', 'PID', 'NESTED', 'USER', 'STAT', 'START', 'COMMAND'];

/**
 * The ps table: host PID, PID in the container's PID namespace, the PIDs in the namespaces nested
 * below it (nestLevel of them, outermost first, as the agent's own table shows them), user, state,
 * start, command.
 */
export function formatProcessTable(processes: ProcessInfo[], now: Date = new Date()): string {
  const rows = processes.map((p) => [
    String(p.hostPid),
    String(p.nsPids[p.nsPids.length - 1 - p.nestLevel] ?? p.nsPids.at(-1) ?? p.hostPid),
    p.nestLevel > 0 ? p.nsPids.slice(-p.nestLevel).join('>') : '-',
    p.user || String(p.uid),
    p.state,
    formatStart(p.startTime, now),
    p.command,
  ]);
  return formatColumns(PS_HEADER, rows);
}

const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v);

/** `nsdebug-agent ps --output=json` → ProcessInfo[], each field checked; INTERNAL naming what is wrong. */
export function parseProcessList(text: string, from = 'the agent'): ProcessInfo[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new NsdebugError(
      `${from} printed no process list (${JSON.stringify(text.trim().slice(0, 120))}); check that the CLI and agent versions match with \`kubectl nsdebug status\``,
      ExitCode.INTERNAL,
    );
  }
  if (!Array.isArray(parsed))
    throw new NsdebugError(`${from} printed JSON that is not a process list; check \`kubectl nsdebug status\``, ExitCode.INTERNAL);
  parsed.forEach((p: Partial<ProcessInfo> | null, i) => {
    const ok =
      p !== null &&
      typeof p === 'object' &&
      isInt(p.hostPid) &&
      Array.isArray(p.nsPids) &&
      p.nsPids.every(isInt) &&
      isInt(p.uid) &&
      typeof p.user === 'string' &&
      typeof p.state === 'string' &&
      typeof p.startTime === 'string' &&
      typeof p.command === 'string';
    if (!ok)
      throw new NsdebugError(`${from} printed a malformed process entry #${i}: ${JSON.stringify(p).slice(0, 160)}`, ExitCode.INTERNAL);
  });
  return parsed as ProcessInfo[];
}

const AGENT_PREFIX = 'nsdebug-agent: ';
const SCAN_LIMIT = 16 * 1024;

/**
 * Passes everything to `target` and remembers the agent's own message lines seen in the first
 * 16 KiB (where the agent's refusals are: before the remote command prints anything).
 */
export class AgentLineWatcher extends Writable {
  readonly lines: string[] = [];
  private scanned = 0;
  private partial = '';

  constructor(private readonly target: NodeJS.WritableStream) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.scanned < SCAN_LIMIT) {
      this.scanned += chunk.length;
      const text = this.partial + chunk.toString('utf8');
      const parts = text.split(/\r?\n/);
      this.partial = (parts.pop() ?? '').slice(0, 1024);
      for (const line of parts) {
        // what a terminal shows: the text after the last carriage return
        const shown = line.split('\r').filter(Boolean).pop() ?? '';
        if (shown.startsWith(AGENT_PREFIX)) this.lines.push(shown.slice(AGENT_PREFIX.length).trim());
      }
    }
    if (this.target.write(chunk)) callback();
    else this.target.once('drain', () => callback());
  }
}
