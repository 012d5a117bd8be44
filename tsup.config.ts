import { readFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      'stores/memory': 'src/stores/memory.ts',
      'stores/mongodb': 'src/stores/mongodb.ts',
      'stores/postgres': 'src/stores/postgres.ts',
      'stores/sqlite': 'src/stores/sqlite.ts',
      'stores/redis': 'src/stores/redis.ts',
      dashboard: 'src/dashboard/index.ts',
      otel: 'src/otel/index.ts',
      testing: 'src/testing/index.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    // shared chunks keep one copy of each error class, so `instanceof` works across subpaths
    splitting: true,
    sourcemap: true,
    // the CommonJS build rewrites classes with fields as `_class = class { … }`, which named
    // LeaseLostError `_class2` (in stack traces, `util.inspect` and `constructor.name`)
    keepNames: true,
    // the cli build below writes into dist/ at the same time; leave its files alone
    clean: ['!cli.js', '!cli.js.map'],
    target: 'node20',
    outDir: 'dist',
    // vitest: leasehold/testing must use the test runner of the project that runs it
    external: ['mongodb', 'pg', 'better-sqlite3', 'ioredis', 'vitest', '@opentelemetry/api'],
    esbuildPlugins: [
      {
        // `import text from './file?raw'` bundles the file as a string (as vite does): the
        // dashboard's page, script and style ship inside dist/ with nothing to read at run time
        name: 'raw-assets',
        setup(build) {
          build.onResolve({ filter: /\?raw$/ }, (args) => {
            const file = resolve(args.resolveDir, args.path.slice(0, -'?raw'.length));
            // the path keeps its `?raw`, so that tsup's own CSS handling (filter /\.css$/) leaves it alone
            return { path: `${relative(process.cwd(), file)}?raw`, namespace: 'raw', pluginData: file };
          });
          build.onLoad({ filter: /.*/, namespace: 'raw' }, async (args) => ({ contents: await readFile(args.pluginData as string, 'utf8'), loader: 'text' }));
        },
      },
    ],
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
    external: ['commander', 'jiti', 'leasehold/dashboard'],
  },
]);
