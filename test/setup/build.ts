import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/** Builds dist/ once: child-process tests, the example and the package test use the build, as users would. */
export default function setup() {
  execFileSync(process.execPath, [resolve(import.meta.dirname, '../../node_modules/tsup/dist/cli-default.js')], {
    cwd: resolve(import.meta.dirname, '../..'),
    stdio: 'pipe',
  });
  // examples/partner-log is CommonJS and imports the package by name
  execFileSync(process.execPath, [resolve(import.meta.dirname, '../../scripts/link-self.mjs')], { stdio: 'pipe' });
}
