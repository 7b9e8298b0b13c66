import { bootTimeMs, parseStat, parseStatus, splitNul, startTimeMs } from '../../../src/agent/procfs.js';
import { parsePasswd, formatProcessTable } from '../../../src/agent/ps.js';
import { fixture } from '../../fixtures.js';

describe('/proc parsers', () => {
  test('NSpid: the same process in the host, the container, and a nested namespace', () => {
    expect(parseStatus(fixture('status-nested.txt'))).toEqual({ name: 'sleep', ppid: 48190, uid: 1000, gid: 1000, nsPids: [48213, 7, 1] });
  });

  test('status without NSpid (Linux < 4.1) falls back to Pid', () => {
    expect(parseStatus('Name:\tx\nPid:\t12\nPPid:\t1\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n').nsPids).toEqual([12]);
  });

  test('stat with parentheses and spaces in comm', () => {
    expect(parseStat(fixture('stat-odd-comm.txt'))).toEqual({ comm: 'my (odd) name', state: 'S', ppid: 48190, startTicks: 2735123 });
  });

  test('malformed files are errors, not zeros', () => {
    expect(() => parseStat('garbage')).toThrow('malformed');
    expect(() => parseStatus('Name:\tx\n')).toThrow('malformed');
  });

  test('NUL-separated lists keep empty arguments', () => {
    expect(splitNul('sh\0-c\0\0echo hi\0')).toEqual(['sh', '-c', '', 'echo hi']);
  });

  test('start time from ticks and btime', () => {
    const boot = bootTimeMs('cpu 1 2 3\nbtime 1700000000\nprocesses 5\n');
    expect(new Date(startTimeMs(250, boot)).toISOString()).toBe('2023-11-14T22:13:22.500Z');
  });

  test('passwd maps uids to names', () => {
    expect(parsePasswd('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/sbin/nologin\n#bad\n')).toEqual(
      new Map([
        [0, 'root'],
        [65534, 'nobody'],
      ]),
    );
  });

  test('ps table shows host PID, container PID and the nested chain', () => {
    const table = formatProcessTable([
      {
        hostPid: 48100,
        nsPids: [48100, 1],
        nestLevel: 0,
        ppid: 1,
        uid: 0,
        user: 'root',
        state: 'S',
        startTime: '2026-01-01T00:00:00.000Z',
        command: 'sleep infinity',
      },
      {
        hostPid: 48213,
        nsPids: [48213, 7, 1],
        nestLevel: 1,
        ppid: 48190,
        uid: 1000,
        user: 'app',
        state: 'S',
        startTime: '2026-01-01T00:00:01.000Z',
        command: 'sleep 5',
      },
    ]);
    expect(table.split('\n')).toEqual([
      'HOST PID  PID  NESTED PID  USER  STAT  START                 COMMAND',
      '48100     1    -           root  S     2026-01-01T00:00:00Z  sleep infinity',
      '48213     7    1           app   S     2026-01-01T00:00:01Z  sleep 5',
      '',
    ]);
  });
});
