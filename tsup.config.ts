import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'stores/memory': 'src/stores/memory.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  // shared chunks keep one copy of each error class, so `instanceof` works across subpaths
  splitting: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  outDir: 'dist',
});
