import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

it('the API docs build with every public export documented (typedoc treats warnings as errors)', () => {
  const root = resolve(import.meta.dirname, '..');
  const out = mkdtempSync(join(tmpdir(), 'leasehold-docs-'));
  const typedoc = join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
  const log = execFileSync(process.execPath, [typedoc, '--out', out], { cwd: root, encoding: 'utf8' });
  expect(log).not.toMatch(/warning/i);
}, 120_000);
