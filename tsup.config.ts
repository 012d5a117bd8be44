import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      'stores/memory': 'src/stores/memory.ts',
      'stores/mongodb': 'src/stores/mongodb.ts',
      'stores/postgres': 'src/stores/postgres.ts',
      'stores/sqlite': 'src/stores/sqlite.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    // shared chunks keep one copy of each error class, so `instanceof` works across subpaths
    splitting: true,
    sourcemap: true,
    // the cli build below writes into dist/ at the same time; leave its files alone
    clean: ['!cli.js', '!cli.js.map'],
    target: 'node20',
    outDir: 'dist',
    external: ['mongodb', 'pg', 'better-sqlite3'],
  },
  {
    // the `leasehold` bin: ESM only, run directly; it uses only types from the library, so
    // its bundle holds no second copy of the error classes
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'node20',
    outDir: 'dist',
    banner: { js: '#!/usr/bin/env node' },
    external: ['commander', 'jiti'],
  },
]);
