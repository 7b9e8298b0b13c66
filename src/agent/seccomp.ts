// A dead container's seccomp profile, for its post-mortem session: its OCI spec keeps the profile
// as syscall names and rules (linux.seccomp), which the runtime compiled with libseccomp; there is
// no process left to copy the filter from. This compiles the same rules to classic BPF for x86_64,
// as libseccomp would, erring only on the strict side: a foreign or x32 ABI is killed, and a rule
// that cannot be compiled faithfully refuses the session rather than loosening the filter.
import { SYSCALLS_X86_64 } from './syscalls-x86-64.js';

/** linux.seccomp of an OCI runtime spec (the fields this compiler reads). */
export interface OciSeccomp {
  defaultAction?: unknown;
  defaultErrnoRet?: unknown;
  architectures?: unknown;
  syscalls?: unknown;
}

interface OciSyscallRule {
  names?: unknown;
  action?: unknown;
  errnoRet?: unknown;
  args?: unknown;
}

interface OciArg {
  index?: unknown;
  value?: unknown;
  valueTwo?: unknown;
  op?: unknown;
}

// <linux/filter.h> classic BPF and <linux/seccomp.h> return values
const LD_W_ABS = 0x20;
const ALU_AND_K = 0x54;
const JEQ_K = 0x15;
const JGT_K = 0x25;
const JGE_K = 0x35;
const RET_K = 0x06;
const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_SYSCALL_BIT = 0x40000000;
const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;
const EPERM = 1;
// struct seccomp_data: nr at 0, arch at 4, args[6] (u64) from 16
const NR = 0;
const ARCH = 4;
const argLow = (i: number) => 16 + 8 * i;
const argHigh = (i: number) => 16 + 8 * i + 4;
/** The kernel's BPF_MAXINSNS. */
const MAX_INSNS = 4096;

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}
const stmt = (code: number, k: number): Insn => ({ code, jt: 0, jf: 0, k: k >>> 0 });
const jump = (code: number, k: number, jt: number, jf: number): Insn => ({ code, jt, jf, k: k >>> 0 });

const refuse = (why: string) => new Error(`cannot rebuild the container's seccomp profile: ${why}`);

function actionOf(action: unknown, errnoRet: unknown, defaultErrno: number): number {
  const errno = errnoRet === undefined ? defaultErrno : Number(errnoRet);
  if (!Number.isInteger(errno) || errno < 0 || errno > 0xffff) throw refuse(`errnoRet ${String(errnoRet)} is not an errno`);
  switch (action) {
    case 'SCMP_ACT_ALLOW':
      return RET.ALLOW;
    case 'SCMP_ACT_ERRNO':
      return RET.ERRNO | errno;
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return RET.TRAP;
    case 'SCMP_ACT_TRACE':
      // with no tracer attached the kernel fails the syscall with ENOSYS
      return RET.TRACE | errno;
    case 'SCMP_ACT_LOG':
      return RET.LOG;
    case 'SCMP_ACT_NOTIFY':
      // no supervisor listens for a post-mortem session: the kernel fails the syscall with ENOSYS
      return RET.USER_NOTIF;
    default:
      throw refuse(`unknown action ${JSON.stringify(action)}`);
  }
}

const u64 = (v: unknown, what: string): bigint => {
  if (typeof v !== 'number' && typeof v !== 'bigint') throw refuse(`${what} is not a number`);
  const n = BigInt(v);
  if (n < 0n || n > 0xffffffffffffffffn) throw refuse(`${what} is out of range`);
  return n;
};
const high = (v: bigint) => Number(v >> 32n);
const low = (v: bigint) => Number(v & 0xffffffffn);

/**
 * One argument comparison: instructions that fall through when it holds and jump to `fail`
 * (given as a function of the position it is jumped from) when it does not.
 */
function comparison(arg: OciArg, failAt: (from: number) => number, start: number): Insn[] {
  const index = Number(arg.index);
  if (!Number.isInteger(index) || index < 0 || index > 5) throw refuse(`argument index ${String(arg.index)}`);
  const value = u64(arg.value ?? 0, 'an argument value');
  const out: Insn[] = [];
  // a conditional jump's offsets count from the next instruction: "to fail" from the one pushed now
  const toFail = () => failAt(start + out.length + 1);
  const op = arg.op;
  if (op === 'SCMP_CMP_EQ' || op === 'SCMP_CMP_MASKED_EQ' || op === 'SCMP_CMP_NE') {
    const masked = op === 'SCMP_CMP_MASKED_EQ';
    // OCI: value is the mask and valueTwo the datum for MASKED_EQ
    const mask = masked ? value : 0xffffffffffffffffn;
    const datum = masked ? u64(arg.valueTwo ?? 0, 'an argument valueTwo') : value;
    const halves: Array<[number, number, number]> = [
      [argHigh(index), high(mask), high(datum)],
      [argLow(index), low(mask), low(datum)],
    ];
    if (op !== 'SCMP_CMP_NE') {
      for (const [offset, m, d] of halves) {
        out.push(stmt(LD_W_ABS, offset));
        if (masked && m !== 0xffffffff) out.push(stmt(ALU_AND_K, m));
        out.push(jump(JEQ_K, d, 0, toFail()));
      }
      return out;
    }
    // NE holds when either half differs: the high half equal → compare the low one
    out.push(stmt(LD_W_ABS, argHigh(index)));
    out.push(jump(JEQ_K, high(datum), 0, 2));
    out.push(stmt(LD_W_ABS, argLow(index)));
    out.push(jump(JEQ_K, low(datum), toFail(), 0));
    return out;
  }
  // LT, LE, GT, GE (unsigned 64-bit): the high halves decide unless they are equal
  const greater = op === 'SCMP_CMP_GT' || op === 'SCMP_CMP_GE';
  if (!greater && op !== 'SCMP_CMP_LT' && op !== 'SCMP_CMP_LE') throw refuse(`unknown comparison ${JSON.stringify(op)}`);
  // arg > v ⇔ GT holds; arg ≥ v ⇔ GE; LT = not GE; LE = not GT
  const strict = op === 'SCMP_CMP_GT' || op === 'SCMP_CMP_LE';
  out.push(stmt(LD_W_ABS, argHigh(index)));
  const block = 4; // the instructions after this load
  if (greater) {
    // high > v.high: holds (jump past the block); high < v.high: fails
    out.push(jump(JGT_K, high(value), block - 1, 0));
    out.push(jump(JEQ_K, high(value), 0, toFail()));
    out.push(stmt(LD_W_ABS, argLow(index)));
    out.push(jump(strict ? JGT_K : JGE_K, low(value), 0, toFail()));
  } else {
    // LT/LE: high > v.high fails; high < v.high holds; equal: low decides (inverted GE/GT)
    out.push(jump(JGT_K, high(value), toFail(), 0));
    out.push(jump(JEQ_K, high(value), 0, block - 2));
    out.push(stmt(LD_W_ABS, argLow(index)));
    out.push(jump(strict ? JGT_K : JGE_K, low(value), toFail(), 0));
  }
  return out;
}

/**
 * The profile as one classic BPF program (struct sock_filter instructions, 8 bytes each), or an
 * Error saying why it cannot be rebuilt faithfully. Rules are tried in order; the first whose
 * syscall and argument conditions match gives its action, else the default action applies.
 */
export function compileSeccomp(profile: OciSeccomp): Buffer {
  const defaultErrno = profile.defaultErrnoRet === undefined ? EPERM : Number(profile.defaultErrnoRet);
  const defaultAction = actionOf(profile.defaultAction, undefined, defaultErrno);
  const rules = profile.syscalls ?? [];
  if (!Array.isArray(rules)) throw refuse('linux.seccomp.syscalls is not a list');
  // other ABIs (i386, x32) would need their own numbers: killed, which is never looser
  const prog: Insn[] = [
    stmt(LD_W_ABS, ARCH),
    jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
    stmt(RET_K, RET.KILL_PROCESS),
    stmt(LD_W_ABS, NR),
    jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
    stmt(RET_K, RET.KILL_PROCESS),
  ];
  for (const rule of rules as OciSyscallRule[]) {
    const action = actionOf(rule.action, rule.errnoRet, defaultErrno);
    if (!Array.isArray(rule.names) || !rule.names.every((n) => typeof n === 'string')) throw refuse('a rule without names');
    const args = rule.args === undefined || rule.args === null ? [] : rule.args;
    if (!Array.isArray(args)) throw refuse('a rule whose args is not a list');
    for (const name of rule.names as string[]) {
      const nr = SYSCALLS_X86_64.get(name);
      if (nr === undefined) {
        // unknown here (newer than these headers): dropping a rule that allows only tightens
        if (action === RET.ALLOW) continue;
        throw refuse(`syscall ${name} is not known on x86_64 here, and its rule restricts it`);
      }
      if (!args.length) {
        prog.push(jump(JEQ_K, nr, 0, 1), stmt(RET_K, action));
        continue;
      }
      // nr → the conditions (each jumps to "reload" on failure) → the action; reload nr after
      const body: Insn[] = [];
      const conditions = args as OciArg[];
      // two passes: sizes first (every comparison's size does not depend on its jump targets)
      const sizes = conditions.map((a) => comparison(a, () => 0, 0).length);
      const bodyLength = sizes.reduce((x, y) => x + y, 0) + 1; // + the action's ret
      for (const arg of conditions) {
        const start = body.length;
        // failing jumps land on the reload after the action: bodyLength is where it sits
        body.push(...comparison(arg, (from) => bodyLength - from, start));
      }
      body.push(stmt(RET_K, action));
      body.push(stmt(LD_W_ABS, NR)); // reload: the conditions left an argument in A
      if (body.length > 255) throw refuse(`the rule for ${name} is too long for one jump`);
      prog.push(jump(JEQ_K, nr, 0, body.length), ...body);
    }
  }
  prog.push(stmt(RET_K, defaultAction));
  if (prog.length > MAX_INSNS) throw refuse(`${prog.length} instructions, more than the kernel's ${MAX_INSNS}`);
  const out = Buffer.alloc(prog.length * 8);
  prog.forEach((insn, i) => {
    out.writeUInt16LE(insn.code, i * 8);
    out.writeUInt8(insn.jt, i * 8 + 2);
    out.writeUInt8(insn.jf, i * 8 + 3);
    out.writeUInt32LE(insn.k, i * 8 + 4);
  });
  return out;
}
