// `kubectl nsdebug replay ID --node NODE`: a recorded session played back (src/cli/replay.ts runs it).
import { Args, Command, Flags } from '@oclif/core';

import { connectionFlags, targetFlags } from '../src/cli/flags.js';

export default class Replay extends Command {
  static summary = 'Play a recorded session back in the terminal, as it was shown.';

  static description = `Sessions are recorded when the cluster was installed with --record hostpath (see \`kubectl nsdebug install --help\`); a recorded session's user is told "this session is recorded (kubectl nsdebug replay ID --node NODE)" when it starts, and its audit line names the recording. The recording is read from the agent on that node, through exec into it (the nsdebug-user role).

A TTY session is played at its own pace (--speed to go faster, pauses longer than --idle-limit shortened); --raw writes its output at once, for a pager or a file. A session without a TTY was recorded as its argv, byte counts and exit code, which are printed as JSON. Recordings written to the agents' logs (--record log) are read with kubectl logs.`;

  static examples = [
    { description: 'Watch a session again, twice as fast', command: '<%= config.bin %> replay 3f9a1c2e7b --node ip-10-0-1-7 --speed 2' },
    { description: 'Its output, for a pager', command: '<%= config.bin %> replay 3f9a1c2e7b --node ip-10-0-1-7 --raw | less -R' },
  ];

  static args = { id: Args.string({ description: 'the session ID its notice and `kubectl nsdebug sessions` show' }) };

  static flags = {
    node: Flags.string({ summary: 'the node the session ran on (its notice names it)', helpValue: 'NODE', required: true }),
    speed: Flags.string({ summary: 'playback speed: 2 is twice as fast', helpValue: 'N', default: '1' }),
    'idle-limit': Flags.string({ summary: 'shorten pauses longer than this many seconds', helpValue: 'SECONDS', default: '2' }),
    raw: Flags.boolean({ summary: 'write the output at once, without its timing', exclusive: ['speed'] }),
    'agent-namespace': targetFlags['agent-namespace'],
    ...connectionFlags,
  };

  async run(): Promise<number> {
    const { args, flags } = await this.parse(Replay);
    const { runReplay } = await import('../src/cli/replay.js');
    return runReplay({ ...flags, ...(args.id !== undefined ? { id: args.id } : {}) });
  }
}
