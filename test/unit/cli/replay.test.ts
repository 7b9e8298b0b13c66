// kubectl nsdebug replay's playback: a recording parsed as the agent writes it, its output played
// at its pace (divided by --speed, long pauses shortened to --idle-limit) or at once with --raw,
// and the flags checked before anything runs.
import { completeReplay, parseRecording, playCast, validateReplay } from '../../../src/cli/replay.js';

const cast = [
  JSON.stringify({ version: 2, width: 80, height: 24, title: 't' }),
  JSON.stringify([0.5, 'o', 'a']),
  JSON.stringify([0.6, 'i', 'typed']),
  JSON.stringify([10.5, 'o', 'b']),
  JSON.stringify([11, 'r', '100x30']),
  JSON.stringify([11.5, 'o', 'c']),
].join('\n');

test('output events at their pace: pauses divided by speed, none longer than the idle limit; input not replayed', async () => {
  const parsed = parseRecording(cast);
  if ('summary' in parsed) throw new Error('not a cast');
  const waits: number[] = [];
  let out = '';
  await playCast(
    parsed,
    (t) => (out += t),
    { speed: 2, idleLimitSeconds: 2, raw: false },
    async (ms) => void waits.push(ms),
  );
  expect(out).toBe('abc');
  expect(waits).toEqual([250, 1000, 500]);
  const none: number[] = [];
  await playCast(
    parsed,
    () => undefined,
    { speed: 1, idleLimitSeconds: 2, raw: true },
    async (ms) => void none.push(ms),
  );
  expect(none).toEqual([]);
});

test('a recording without a TTY is its summary', () => {
  expect(parseRecording('{"session":"x","argv":["true"],"exitCode":0}\n')).toEqual({
    summary: { session: 'x', argv: ['true'], exitCode: 0 },
  });
});

test.each([
  [{ id: 'nope', node: 'n1' }, 'name a recorded session by its ID'],
  [{ id: '0123456789', node: '' }, '--node must name the node the session ran on'],
  [{ id: '0123456789', node: 'n1', speed: '0' }, '--speed must be a number above 0'],
  [{ id: '0123456789', node: 'n1', 'idle-limit': 'x' }, '--idle-limit must be a number of seconds'],
])('refuses %j', (flags, message) => {
  expect(() => validateReplay(completeReplay(flags))).toThrow(message);
});
