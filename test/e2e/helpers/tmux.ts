// A real terminal for interactive e2e tests: a private tmux server with one session "e2e"
// running sh, driven by keystrokes and read back from its screen.
import { execa } from 'execa';

import { waitFor } from './kube.js';

export function tmuxTerminal(server: string) {
  const tmux = (...args: string[]) => execa('tmux', ['-L', server, '-f', '/dev/null', ...args], { reject: false });
  const screen = async () => String((await tmux('capture-pane', '-p', '-J', '-S', '-500', '-t', 'e2e')).stdout ?? '');
  return {
    tmux,
    screen,
    /** start the session: a cols × rows terminal running sh with env added */
    start: (cols: number, rows: number, env: Record<string, string>) =>
      tmux(
        'new-session',
        '-d',
        '-s',
        'e2e',
        '-x',
        String(cols),
        '-y',
        String(rows),
        ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
        'sh',
      ),
    /** type a line and Enter */
    type: async (line: string) => {
      await tmux('send-keys', '-t', 'e2e', '-l', line);
      await tmux('send-keys', '-t', 'e2e', 'Enter');
    },
    /** wait until the screen shows pattern */
    until: (what: string, pattern: RegExp, timeoutMs = 60_000) => waitFor(what, async () => pattern.test(await screen()), timeoutMs, 200),
    kill: () => tmux('kill-server'),
  };
}
