import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  resolve: {
    // examples import the package by name, as users do; tests run them against the sources
    alias: [
      { find: /^leasehold\/(memory|mongodb|postgres|sqlite|redis)$/, replacement: src('stores/$1.ts') },
      { find: /^leasehold$/, replacement: src('index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/build.ts', 'test/setup/postgres.ts', 'test/setup/mongodb.ts', 'test/setup/redis.ts'],
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
