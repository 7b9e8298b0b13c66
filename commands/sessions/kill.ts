// `kubectl nsdebug sessions kill ID`: end one live session (src/cli/sessions.ts runs it).
import { Args, Command } from '@oclif/core';

import { connectionFlags, targetFlags } from '../../src/cli/flags.js';

export default class SessionsKill extends Command {
  static summary = 'End a live debug session, telling its user why.';

  static description = `The session's processes are ended as when its client goes, its user is told "the session was ended by kubectl nsdebug sessions kill", and the agent's audit log records the kill and the session's end (ended: killed).

A session authorized by exec into the agent is ended through that agent (exec into it, as for a session: the nsdebug-user role); one authorized by a DebugSession by deleting its DebugSession (delete on debugsessions in its namespace), which the agent revokes.`;

  static examples = [{ description: 'End the session with ID 3f9a1c2e7b', command: '<%= config.bin %> sessions kill 3f9a1c2e7b' }];

  static args = { id: Args.string({ description: 'the session ID, as `kubectl nsdebug sessions` lists it' }) };

  static flags = {
    'agent-namespace': targetFlags['agent-namespace'],
    ...connectionFlags,
  };

  async run(): Promise<number> {
    const { args, flags } = await this.parse(SessionsKill);
    const { runSessionsKill } = await import('../../src/cli/sessions.js');
    return runSessionsKill({ ...flags, ...(args.id !== undefined ? { id: args.id } : {}) });
  }
}
