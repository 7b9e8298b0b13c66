// Text a container controls never drives the operator's terminal: escaped, not dropped.
import { escapeLine, escapeText } from '../../../src/cli/escape.js';
import { formatProcessTable } from '../../../src/cli/output.js';
import { formatNamespaceTable } from '../../../src/cli/ns.js';

describe('escapeLine / escapeText', () => {
  test.each([
    ['CSI: clear the screen, colours', '\x1b[2J\x1b[31mred', '\\x1b[2J\\x1b[31mred'],
    ['OSC 52: set the clipboard', '\x1b]52;c;ZWNobyBwd25lZA==\x07', '\\x1b]52;c;ZWNobyBwd25lZA==\\x07'],
    ['CR: overwrite what was printed', 'rm -rf /\rls', 'rm -rf /\\rls'],
    ['8-bit CSI (C1)', '\u009b2J', '\\x9b2J'],
    ['DEL and NUL', 'a\x7fb\x00c', 'a\\x7fb\\x00c'],
    ['BiDi override (Trojan Source)', 'user\u202etxt.exe', 'user\\u202etxt.exe'],
    ['plain text and tabs', 'sleep 3600\t#ok ü', 'sleep 3600\t#ok ü'],
  ])('%s', (_what, raw, shown) => {
    expect(escapeLine(raw)).toBe(shown);
    expect(escapeText(raw)).toBe(shown);
  });

  test('a line has no newline left; a text keeps its lines', () => {
    expect(escapeLine('a\nb')).toBe('a\\nb');
    expect(escapeText('a\nb\x1b')).toBe('a\nb\\x1b');
  });
});

describe('tables of container text', () => {
  test('ps: a command line with escape sequences is shown escaped, and the columns stay aligned', () => {
    const table = formatProcessTable(
      [
        {
          hostPid: 10,
          nsPids: [10, 1],
          nestLevel: 0,
          ppid: 0,
          uid: 0,
          user: 'root',
          state: 'S',
          startTime: '2026-12-01T10:00:00Z',
          command: 'sleep 1',
        },
        {
          hostPid: 11,
          nsPids: [11, 7],
          nestLevel: 0,
          ppid: 10,
          uid: 0,
          user: '\x1b[8m',
          state: 'S',
          startTime: '2026-12-01T10:00:00Z',
          command: '\x1b]0;pwned\x07x',
        },
      ],
      new Date('2026-12-01T11:00:00Z'),
    );
    expect([...table].filter((c) => c !== '\n' && c < ' ')).toEqual([]);
    expect(table).toContain('\\x1b]0;pwned\\x07x');
    expect(table).toContain('\\x1b[8m');
  });

  test('ns: the command column too', () => {
    const table = formatNamespaceTable([
      { kind: 'pid', inode: 4026531836, level: 1, processes: 1, hostPid: 10, sharedBy: ['app'], command: 'x\ry' } as never,
    ]);
    expect(table).toContain('x\\ry');
    expect(table).not.toContain('\r');
  });
});
