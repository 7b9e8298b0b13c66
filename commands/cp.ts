// `kubectl nsdebug cp SOURCE DESTINATION`: a file or (-r) a tree out of or into a container, no tar needed.
import { Args, Command, Flags } from '@oclif/core';

import { kubeFlags, targetFlags } from '../src/cli/flags.js';

export default class Cp extends Command {
  static summary =
    'Copy a file or (-r) a directory tree out of or into a container, byte for byte with modes and mtimes, even when it has no tar or shell.';
  static description = `One side is TARGET:PATH (TARGET as for a session: pod/NAME or NAME, deploy/NAME, …), the other a local path; a local path starting with / or . is always local. A relative PATH starts at the container's working directory. An existing directory as the destination receives the file (or with -r the directory) under its own name, merged into what is there; "-" as the destination writes the file to stdout, or with -r a tar stream; "-" as the source reads a tar stream from stdin and unpacks it into the container's directory.

With -r, regular files, directories and symbolic links are copied (a link is kept as a link, never followed); FIFOs, sockets, devices and the kernel's own file systems (/proc, /sys) are skipped with a line saying so. On a terminal a progress line shows bytes, entries and rate.

Out of a container that is not running (crashed, completed, OOMKilled), cp reads its last filesystem, read-only, as a post-mortem session sees it.

The nsdebug agent on the container's node reads or writes the file in the container's own mount namespace (its volumes included), with the container's symlinks resolved inside the container, and nothing runs in the container. A file copied in belongs to the container's user and replaces the old one only once complete, so an interrupted copy leaves no partial file; a read-only file system is refused with a clear message.

EXIT STATUS: 0 when copied; 64 usage, 65 no such pod, container or file, 66 forbidden, 67 agent unavailable, 73 the file could not be read or written.`;
  static examples = [
    {
      description: "A distroless container's config file to the current directory",
      command: 'kubectl nsdebug cp pod/api-7d9c:/etc/app/config.yaml .',
    },
    {
      description: "A heap dump out of a deployment's pod, from container app",
      command: 'kubectl nsdebug cp -n shop deploy/checkout:/tmp/heap.hprof ./heap.hprof -c app',
    },
    { description: "A static binary into a pod's writable volume", command: 'kubectl nsdebug cp ./strace pod/web-0:/scratch/' },
    { description: 'A file to stdout', command: 'kubectl nsdebug cp pod/web-0:/proc/1/status - | grep Cap' },
    {
      description: "A crashed container's logs directory, from its last filesystem",
      command: 'kubectl nsdebug cp -r pod/api-7d9c:/var/log ./api-logs',
    },
    { description: 'A local configuration tree into a running container', command: 'kubectl nsdebug cp -r ./conf pod/web-0:/etc/app' },
    {
      description: 'A tree as a tar stream, both ways',
      command: 'kubectl nsdebug cp -r pod/web-0:/data - | tar -tv; tar -c conf | kubectl nsdebug cp - pod/web-0:/scratch',
    },
  ];
  static args = {
    source: Args.string({ description: 'TARGET:PATH in a container, or a local file' }),
    destination: Args.string({ description: 'a local path, or TARGET:PATH in a container' }),
  };
  static flags = {
    recursive: Flags.boolean({ char: 'r', description: 'copy a directory and everything below it' }),
    container: targetFlags.container,
    'agent-namespace': targetFlags['agent-namespace'],
    'session-auth': targetFlags['session-auth'],
    ...kubeFlags,
  };

  async run(): Promise<number> {
    const { args, flags } = await this.parse(Cp);
    const { runCp } = await import('../src/cli/cp.js');
    return runCp({
      ...flags,
      ...(args.source !== undefined ? { source: args.source } : {}),
      ...(args.destination !== undefined ? { destination: args.destination } : {}),
    });
  }
}
