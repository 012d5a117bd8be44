import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'stores/memory': 'src/stores/memory.ts',
    'stores/mongodb': 'src/stores/mongodb.ts',
    'stores/postgres': 'src/stores/postgres.ts',
    'stores/sqlite': 'src/stores/sqlite.ts',
    otel: 'src/otel/index.ts',
    testing: 'src/testing/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  // shared chunks keep one copy of each error class, so `instanceof` works across subpaths
  splitting: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  outDir: 'dist',
  // vitest: leasehold/testing must use the test runner of the project that runs it
  external: ['mongodb', 'pg', 'better-sqlite3', 'vitest', '@opentelemetry/api'],
});
