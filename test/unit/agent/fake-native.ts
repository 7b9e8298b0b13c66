// A fake of the native library (NativeLibrary in src/native/libnsdebug.ts) for the agent's unit
// tests: no root, no libnsdebug.so. It records the calls in order, fails the step it is told to,
// and hands out real fds and a real process where the code under test needs them: the pidfd is an
// fd of /dev/null, the exit pipe is a FIFO in a tmp dir (spawn's exitFd is its read end), and the
// supervisor is a child shell, so that closing, SIGTERM and reaping can be observed.
import { spawn as startProcess, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants as fsConstants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';

import { NativeError, type NativeLibrary, type SpawnRequest, type SpawnResult } from '../../../src/native/libnsdebug.js';

/** How the fake's session goes once spawn returns. */
export interface FakeSession {
  /** the command's exit code, sent on the exit pipe soon after spawn; none: it runs until the supervisor is ended */
  exitCode?: number;
  /** the supervisor ignores SIGTERM (only SIGKILL ends it) */
  ignoresSigterm?: boolean;
}

/** A spawn failure: the NativeError's step and errno; supervisorStarted: the supervisor reported it and exits by itself. */
export interface FakeSpawnFailure {
  step: NativeError['step'];
  errno: number;
  supervisorStarted?: boolean;
}

/** How long a supervisor that reported a failure takes to exit: long enough for a caller that does not wait to show. */
const FAILED_SUPERVISOR_EXIT_MS = 50;
const COMMAND_RUN_MS = 20;

/** A child shell standing in for the session supervisor: it exits when its stdin gets a line, or on a signal. */
class FakeSupervisor {
  readonly process: ChildProcess;
  /** the exit pipe's write end, which the supervisor holds: closed when it exits */
  private exitWriteFd = -1;

  constructor(ignoresSigterm = false) {
    this.process = startProcess('sh', ['-c', `${ignoresSigterm ? 'trap "" TERM; ' : ''}read _; exit 0`], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    this.process.on('exit', () => this.closeExitPipe());
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** The exit pipe: a FIFO, unlinked once both ends are open; the read end is the caller's, the write end ours. */
  openExitPipe(): number {
    const dir = mkdtempSync(join(tmpdir(), 'nsdebug-fake-native-'));
    try {
      const fifo = join(dir, 'exit');
      execFileSync('mkfifo', [fifo]);
      // non-blocking, so that opening the read end does not wait for a writer
      const readFd = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
      this.exitWriteFd = openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      return readFd;
    } finally {
      rmSync(dir, { recursive: true });
    }
  }

  /** The command ended with code: the supervisor reports it, then exits. */
  finish(code: number): void {
    if (this.exitWriteFd >= 0) {
      const report = Buffer.alloc(4);
      report.writeInt32LE(code, 0);
      writeSync(this.exitWriteFd, report);
    }
    this.exit();
  }

  /** The supervisor exits (0) by itself. */
  exit(): void {
    this.process.stdin?.end('\n');
  }

  /** The wait status once the shell has exited, as waitpid(2) gives it; null while it runs. */
  get waitStatus(): number | null {
    if (this.process.signalCode) return osConstants.signals[this.process.signalCode];
    if (this.process.exitCode !== null) return this.process.exitCode << 8;
    return null;
  }

  /** How it ended, for the call log: "exit 0", "SIGTERM". */
  get ending(): string {
    return this.process.signalCode ?? `exit ${this.process.exitCode}`;
  }

  dispose(): void {
    if (this.waitStatus === null) this.process.kill('SIGKILL');
    this.process.stdin?.destroy();
    this.closeExitPipe();
  }

  private closeExitPipe(): void {
    if (this.exitWriteFd < 0) return;
    closeSync(this.exitWriteFd);
    this.exitWriteFd = -1;
  }
}

const notFaked = (call: string): never => {
  throw new Error(`FakeNativeLibrary: ${call} is not faked`);
};

export class FakeNativeLibrary implements NativeLibrary {
  /** the fds pidfdOpen handed out */
  readonly pidfds: number[] = [];
  /** every spawn's request, in order */
  readonly requests: SpawnRequest[] = [];
  /** every spawn's result */
  readonly results: SpawnResult[] = [];
  /** the supervisors started, in order */
  readonly supervisors: FakeSupervisor[] = [];
  private pidfdOpenFailure: NativeError | undefined;
  private spawnFailure: FakeSpawnFailure | undefined;

  /**
   * calls: where the calls are recorded, in order, shared with other fakes to see the order
   * across them: "pidfdOpen", "spawn", "reaped supervisor: SIGTERM" (a reap that finds the
   * supervisor still running is not recorded), "releaseMemory".
   */
  constructor(
    readonly calls: string[] = [],
    private readonly session: FakeSession = {},
  ) {}

  /** The next pidfdOpen throws err. */
  failPidfdOpen(err: NativeError): void {
    this.pidfdOpenFailure = err;
  }

  /** The next spawn fails as the native side reports it: at step, with errno, maybe from a supervisor that started. */
  failSpawn(failure: FakeSpawnFailure): void {
    this.spawnFailure = failure;
  }

  /** Kill and forget whatever is still running or open. */
  dispose(): void {
    for (const supervisor of this.supervisors) supervisor.dispose();
  }

  pidfdOpen(): number {
    this.calls.push('pidfdOpen');
    const failure = this.pidfdOpenFailure;
    this.pidfdOpenFailure = undefined;
    if (failure) throw failure;
    const fd = openSync('/dev/null', 'r');
    this.pidfds.push(fd);
    return fd;
  }

  spawn(req: SpawnRequest): SpawnResult {
    this.calls.push('spawn');
    this.requests.push(req);
    const failure = this.spawnFailure;
    this.spawnFailure = undefined;
    if (failure) {
      if (!failure.supervisorStarted) throw new NativeError(failure.step, failure.errno);
      const supervisor = this.startSupervisor();
      setTimeout(() => supervisor.exit(), FAILED_SUPERVISOR_EXIT_MS);
      throw new NativeError(failure.step, failure.errno, supervisor.pid);
    }
    const supervisor = this.startSupervisor();
    const result: SpawnResult = {
      supervisorPid: supervisor.pid,
      ptyMasterFd: req.tty ? openSync('/dev/null', 'r+') : -1,
      exitFd: supervisor.openExitPipe(),
      usedToolbox: false,
    };
    this.results.push(result);
    const { exitCode } = this.session;
    if (exitCode !== undefined) setTimeout(() => supervisor.finish(exitCode), COMMAND_RUN_MS);
    return result;
  }

  reap(pid: number): number | null {
    const supervisor = this.supervisors.find((s) => s.pid === pid);
    if (!supervisor) throw new NativeError(`wait for pid ${pid}`, osConstants.errno.ECHILD);
    const status = supervisor.waitStatus;
    if (status !== null) this.calls.push(`reaped supervisor: ${supervisor.ending}`);
    return status;
  }

  releaseMemory(): void {
    this.calls.push('releaseMemory');
  }

  openInRootAs(): number {
    return notFaked('openInRootAs');
  }

  renameAs(): void {
    notFaked('renameAs');
  }

  mkdirAs(): void {
    notFaked('mkdirAs');
  }

  symlinkAs(): void {
    notFaked('symlinkAs');
  }

  snapshotRoot(): number {
    return notFaked('snapshotRoot');
  }

  writeIfReady(): boolean {
    return notFaked('writeIfReady');
  }

  seccompFilters(): Promise<Buffer[]> {
    return notFaked('seccompFilters');
  }

  openInRoot(): number {
    return notFaked('openInRoot');
  }

  setWinsize(): void {
    notFaked('setWinsize');
  }

  getWinsize(): { rows: number; cols: number } {
    return notFaked('getWinsize');
  }

  pipe(): [number, number] {
    return notFaked('pipe');
  }

  receiveRequest(): { data: Buffer; fds: number[] } | null {
    return notFaked('receiveRequest');
  }

  private startSupervisor(): FakeSupervisor {
    const supervisor = new FakeSupervisor(this.session.ignoresSigterm);
    this.supervisors.push(supervisor);
    return supervisor;
  }
}
