// The OCI seccomp profile of a dead container, compiled to classic BPF: each program is run here
// by a small interpreter of the instructions it uses (the kernel's semantics for them), so the
// tests assert the verdict a syscall would get, not the bytes.
import { existsSync, readFileSync } from 'node:fs';

import { compileSeccomp, type OciSeccomp } from '../../../src/agent/seccomp.js';
import { SYSCALLS_X86_64 } from '../../../src/agent/syscalls-x86-64.js';

const X86_64 = 0xc000003e;
const I386 = 0x40000003;
const ALLOW = 0x7fff0000;
const ERRNO = (e: number) => 0x00050000 | e;
const KILL_PROCESS = 0x80000000;
const nr = (name: string) => SYSCALLS_X86_64.get(name)!;

/** Runs a compiled program on one struct seccomp_data: the filter's verdict. */
function run(program: Buffer, syscall: number, args: bigint[] = [], arch = X86_64): number {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(syscall >>> 0, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(a, 16 + 8 * i));
  let a = 0;
  for (let pc = 0, steps = 0; pc * 8 < program.length && steps < 10_000; steps++) {
    const code = program.readUInt16LE(pc * 8);
    const [jt, jf, k] = [program.readUInt8(pc * 8 + 2), program.readUInt8(pc * 8 + 3), program.readUInt32LE(pc * 8 + 4)];
    pc++;
    if (code === 0x20) a = data.readUInt32LE(k);
    else if (code === 0x54) a = (a & k) >>> 0;
    else if (code === 0x15) pc += a === k ? jt : jf;
    else if (code === 0x25) pc += a > k ? jt : jf;
    else if (code === 0x35) pc += a >= k ? jt : jf;
    else if (code === 0x06) return k;
    else throw new Error(`unexpected instruction 0x${code.toString(16)}`);
  }
  throw new Error('the program ran off its end');
}

// The shapes of containerd's RuntimeDefault profile: an allow-list, argument rules for
// personality (EQ), clone (MASKED_EQ on the namespace flags) and socket (NE AF_VSOCK), errno rules.
const PROFILE: OciSeccomp = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 1,
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [
    { names: ['read', 'write', 'exit_group', 'a_syscall_from_the_future'], action: 'SCMP_ACT_ALLOW' },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0xffffffff, op: 'SCMP_CMP_EQ' }] },
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }] },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
    { names: ['mmap'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 0x1_0000_0000, op: 'SCMP_CMP_LT' }] },
    { names: ['brk'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 10, op: 'SCMP_CMP_GE' }] },
  ],
};

describe('compileSeccomp', () => {
  const program = compileSeccomp(PROFILE);

  test('allowed syscalls pass, others get the default errno', () => {
    expect(run(program, nr('read'))).toBe(ALLOW);
    expect(run(program, nr('exit_group'))).toBe(ALLOW);
    expect(run(program, nr('mount'))).toBe(ERRNO(1));
    expect(run(program, nr('clone3'))).toBe(ERRNO(38));
  });

  test('argument rules: EQ, MASKED_EQ, NE, LT and GE on 64-bit values', () => {
    expect(run(program, nr('personality'), [0n])).toBe(ALLOW);
    expect(run(program, nr('personality'), [0xffffffffn])).toBe(ALLOW);
    expect(run(program, nr('personality'), [8n])).toBe(ERRNO(1));
    expect(run(program, nr('personality'), [0x1_0000_0000n])).toBe(ERRNO(1));
    // clone without namespace flags passes; CLONE_NEWUSER (0x10000000) is refused
    expect(run(program, nr('clone'), [0x011200n])).toBe(ALLOW);
    expect(run(program, nr('clone'), [0x10000000n | 0x011200n])).toBe(ERRNO(1));
    expect(run(program, nr('socket'), [2n])).toBe(ALLOW);
    expect(run(program, nr('socket'), [40n])).toBe(ERRNO(1));
    expect(run(program, nr('socket'), [(1n << 32n) | 40n])).toBe(ALLOW);
    expect(run(program, nr('mmap'), [0n, 4096n])).toBe(ALLOW);
    expect(run(program, nr('mmap'), [0n, 0xffff_ffffn])).toBe(ALLOW);
    expect(run(program, nr('mmap'), [0n, 0x1_0000_0000n])).toBe(ERRNO(1));
    expect(run(program, nr('mmap'), [0n, 0x2_0000_0000n])).toBe(ERRNO(1));
    expect(run(program, nr('brk'), [10n])).toBe(ALLOW);
    expect(run(program, nr('brk'), [9n])).toBe(ERRNO(1));
    expect(run(program, nr('brk'), [1n << 40n])).toBe(ALLOW);
  });

  test('other ABIs are killed, never let through: i386, and x32 numbers on x86_64', () => {
    expect(run(program, 3, [], I386)).toBe(KILL_PROCESS);
    expect(run(program, 0x40000000 | nr('read'))).toBe(KILL_PROCESS);
  });

  test('a rule that restricts a syscall unknown here refuses the profile; one that allows it is dropped', () => {
    expect(() =>
      compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['a_syscall_from_the_future'], action: 'SCMP_ACT_ERRNO' }] }),
    ).toThrow(/a_syscall_from_the_future is not known on x86_64 here, and its rule restricts it/);
  });

  test('a deny-list profile: the listed syscalls fail, everything else passes', () => {
    const denyList = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['ptrace'], action: 'SCMP_ACT_KILL_PROCESS' }],
    });
    expect(run(denyList, nr('ptrace'))).toBe(KILL_PROCESS);
    expect(run(denyList, nr('read'))).toBe(ALLOW);
  });

  test.each([
    [{ defaultAction: 'SCMP_ACT_MAYBE' }, /unknown action "SCMP_ACT_MAYBE"/],
    [
      {
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }],
      },
      /argument index 6/,
    ],
    [
      {
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_ROUGHLY' }] }],
      },
      /unknown comparison/,
    ],
    [{ defaultAction: 'SCMP_ACT_ERRNO', syscalls: 'read' }, /not a list/],
  ])('refuses what it cannot rebuild faithfully: %j', (profile, message) => {
    expect(() => compileSeccomp(profile as OciSeccomp)).toThrow(message);
  });
});

const HEADER = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
if (!existsSync(HEADER)) console.warn(`skipped: no ${HEADER} (linux-libc-dev) to check the syscall table against`);
(existsSync(HEADER) ? test : test.skip)('the syscall table is the kernel headers’ (test/support/gen-syscalls.sh)', () => {
  const fromHeader = new Map(
    [...readFileSync(HEADER, 'utf8').matchAll(/^#define __NR_([a-z0-9_]+) (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]),
  );
  expect(new Map(SYSCALLS_X86_64)).toEqual(fromHeader);
});
