// The tiers (see ../shared/DESIGN.md and test/run-tiers.sh): unit needs nothing; charts a helm
// client (NSDEBUG_HELM); integration needs root and a containerd started by test/support; e2e
// needs the cluster from test/cluster.
const tier = (name, extra = {}) => ({
  displayName: name,
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { ignoreCodes: [151002] } }] },
  ...extra,
});

export default {
  // Real containers and a real cluster: allow for slow machines (a per-project value is ignored).
  testTimeout: 60000,
  projects: [
    tier('unit'),
    tier('charts'),
    tier('integration', {
      globalSetup: '<rootDir>/test/integration/global-setup.ts',
      globalTeardown: '<rootDir>/test/integration/global-teardown.ts',
    }),
    tier('e2e'),
    tier('scale'),
  ],
};
