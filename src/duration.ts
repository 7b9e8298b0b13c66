// Durations as users and manifests write them, for the CLI's flags and the agent's.
import { usageError } from './errors.js';

/** "90s", "2m", "1h30m", "500ms", or a bare number of seconds → milliseconds. */
export function parseDuration(text: string, flag = '--timeout'): number {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== text)
    throw usageError(`${flag} must be a duration like 90s, 2m or 1h30m, not "${text}"`);
  return parts.reduce((ms, [, n, unit]) => ms + Number(n) * (units[unit as string] as number), 0);
}
