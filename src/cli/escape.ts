// Text the cluster or a container controls (termination messages, log lines, command lines),
// made safe to print on the operator's terminal: a container must not be able to move the
// cursor, clear the screen, set the clipboard (OSC 52) or hide text behind CR and BiDi marks.
// Every C0 control but tab (and newline where the text is multi-line), DEL, the C1 controls and
// the BiDi overrides/isolates become visible escapes (\x1b, \r, \u202e); nothing is dropped, so
// the operator still sees what was there.

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const UNSAFE_OR_NEWLINE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const visible = (c: string): string => {
  const code = c.charCodeAt(0);
  if (c === '\r') return '\\r';
  if (c === '\n') return '\\n';
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
};

/** One line of outside text for the terminal: every control character (newlines too) escaped. */
export const escapeLine = (text: string): string => text.replace(UNSAFE_OR_NEWLINE, visible);

/** Multi-line outside text for the terminal: newlines kept, every other control character escaped. */
export const escapeText = (text: string): string => text.replace(UNSAFE, visible);
