// Makes `require('leasehold')` work from examples/partner-log (a CommonJS folder, so that
// `npx ts-node` runs it on Node 20): node_modules/leasehold points at this package, whose
// `exports` map then resolves to the build in dist/.
import { lstatSync, mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const link = join(root, 'node_modules', 'leasehold');
try {
  lstatSync(link);
} catch {
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync('..', link, 'dir');
}
