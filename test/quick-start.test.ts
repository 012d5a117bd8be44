import { expect, it, vi } from 'vitest';

it('the README quick start runs as written', async () => {
  const lines: unknown[][] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(args));
  try {
    await import('../examples/quick-start.js');
  } finally {
    spy.mockRestore();
  }
  expect(lines.filter((l) => String(l[0]).startsWith('downloading'))).toHaveLength(2);
  expect(lines.at(-1)).toEqual([{ pending: 0, downloading: 0, downloaded: 2, failed: 0 }]);
});
