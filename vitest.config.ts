import { defineConfig } from 'vitest/config';

// Separate projects: server tests need Node's `ws`; browser-facing code is only ever built by
// Vite's Solid plugin in client/vite.config.ts and driven through a real Chromium in e2e (the
// client's plain logic is tested in Node, without that plugin).
export default defineConfig({
  test: {
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    projects: [
      {
        test: {
          name: 'shared',
          include: ['shared/src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        // The client's logic that needs no browser (what the page offers, say): plain Node.
        test: {
          name: 'client',
          include: ['client/src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'server',
          include: ['server/src/**/*.test.ts', 'server/test/**/*.test.ts', 'server/bench/**/*.test.ts'],
          environment: 'node',
          // Memory tests call gc() so that what they measure is what is really retained.
          execArgv: ['--expose-gc'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['client/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
