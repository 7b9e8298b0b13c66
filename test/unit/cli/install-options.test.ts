// install, uninstall and status as table tests over argv, like the session's (options.test.ts):
// the command's own flag definitions parse the argv, then complete() and validate() run; refusals
// are the lines a user sees, with exit 64.
import { Parser } from '@oclif/core';

import Install from '../../../commands/install.js';
import Status from '../../../commands/status.js';
import Uninstall from '../../../commands/uninstall.js';
import { completeInstall, validateInstall, type InstallCommandOptions } from '../../../src/cli/install.js';
import { completeStatus, validateStatus, type StatusOptions } from '../../../src/cli/status.js';
import { completeUninstall, validateUninstall, type UninstallCommandOptions } from '../../../src/cli/uninstall.js';
import { ExitCode } from '../../../src/contract.js';
import { refusal } from './fakes.js';

async function installOptions(argv: string[]): Promise<InstallCommandOptions> {
  const { flags } = await Parser.parse(argv, { flags: Install.flags, strict: true });
  const opts = completeInstall(flags);
  validateInstall(opts);
  return opts;
}

async function uninstallOptions(argv: string[]): Promise<UninstallCommandOptions> {
  const { flags } = await Parser.parse(argv, { flags: Uninstall.flags, strict: true });
  const opts = completeUninstall(flags);
  validateUninstall(opts);
  return opts;
}

async function statusOptions(argv: string[]): Promise<StatusOptions> {
  const { flags } = await Parser.parse(argv, { flags: Status.flags, strict: true });
  const opts = completeStatus(flags);
  validateStatus(opts);
  return opts;
}

describe('kubectl nsdebug install', () => {
  test.each<[string[], Partial<InstallCommandOptions>]>([
    [[], { namespace: 'nsdebug-system', dryRun: false, wait: true, timeout: '2m', sessionAuth: false, kube: {} }],
    [
      ['-n', 'dbg', '--image', 'r.example/agent:1', '--dry-run', '--no-wait', '--session-auth'],
      { namespace: 'dbg', image: 'r.example/agent:1', dryRun: true, wait: false, sessionAuth: true },
    ],
    [
      ['--timeout', '5m', '--context', 'prod', '--kubeconfig', '/k', '--request-timeout', '5s'],
      { timeout: '5m', kube: { context: 'prod', kubeconfig: '/k', requestTimeout: '5s' } },
    ],
  ])('%j', async (argv, expected) => expect(await installOptions(argv)).toMatchObject(expected));

  test.each<[string[], string]>([
    [['-n', 'Debug'], `error: --namespace must be a DNS label (lowercase letters, digits, '-'), not "Debug"`],
    [['--image', 'UPPER/case'], 'error: --image must be an image reference like registry.example/nsdebug-agent:0.1.0, not "UPPER/case"'],
    [['--timeout', 'soon'], 'error: --timeout must be a duration like 90s, 2m or 1h30m, not "soon"'],
    [['--request-timeout', 'soon'], 'error: --request-timeout must be a duration like 30s, 2m or 0 (no limit), not "soon"'],
    // first error wins: the namespace before the image
    [['-n', 'x_y', '--image', 'bad image'], `error: --namespace must be a DNS label (lowercase letters, digits, '-'), not "x_y"`],
  ])('%j is refused', async (argv, line) => expect(await refusal(installOptions(argv))).toEqual({ line, exitCode: ExitCode.USAGE }));
});

describe('kubectl nsdebug uninstall', () => {
  test('defaults', async () =>
    expect(await uninstallOptions([])).toEqual({ namespace: 'nsdebug-system', wait: true, timeout: '2m', kube: {} }));
  test('--no-wait, -n', async () =>
    expect(await uninstallOptions(['--no-wait', '-n', 'dbg'])).toMatchObject({ namespace: 'dbg', wait: false }));
  test.each<[string[], string]>([
    [['-n', 'a'.repeat(64)], `error: --namespace must be a DNS label (lowercase letters, digits, '-'), not "${'a'.repeat(64)}"`],
    [['--timeout', '1d'], 'error: --timeout must be a duration like 90s, 2m or 1h30m, not "1d"'],
  ])('%j is refused', async (argv, line) => expect(await refusal(uninstallOptions(argv))).toEqual({ line, exitCode: ExitCode.USAGE }));
});

describe('kubectl nsdebug status', () => {
  test('defaults', async () => expect(await statusOptions([])).toEqual({ namespace: 'nsdebug-system', output: 'summary', kube: {} }));
  test('-o wide', async () => expect(await statusOptions(['-o', 'wide'])).toMatchObject({ output: 'wide' }));
  test('-o json -n dbg', async () =>
    expect(await statusOptions(['-o', 'json', '-n', 'dbg'])).toMatchObject({ namespace: 'dbg', output: 'json' }));
  test.each<[string[], string]>([
    [['-o', 'yaml'], 'error: expected --output=yaml to be one of: wide, json'],
    [['-n'], 'error: flag --namespace expects a value'],
    [['-n', 'x-'], `error: --namespace must be a DNS label (lowercase letters, digits, '-'), not "x-"`],
  ])('%j is refused', async (argv, line) => expect(await refusal(statusOptions(argv))).toEqual({ line, exitCode: ExitCode.USAGE }));
});
