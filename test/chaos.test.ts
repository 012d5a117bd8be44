import { describe, expect, inject, it } from 'vitest';
import { chaosLine, chaosRun, type ChaosResult } from '../chaos/harness.mjs';

/** A smaller `npm run chaos`: worker processes killed with SIGKILL and frozen past their lease. */
describe('crash chaos (small)', () => {
  const check = (result: ChaosResult) => {
    const line = chaosLine([result]);
    console.log(line, JSON.stringify(result.history));
    expect(result.otherErrors).toEqual([]);
    expect(result).toMatchObject({ lost: 0, duplicates: 0, wrongFence: 0, overAttempts: 0, linearizable: true, ok: true });
    expect(line.endsWith(' linearizable=yes')).toBe(true);
    // every item's history was checked, from its track to the final read
    expect(result.history.keys).toBe(result.items);
    // the chaos must have happened for the result to mean anything
    expect(result.crashes).toBeGreaterThan(0);
    expect(result.reaped).toBeGreaterThan(0);
  };

  it('SQLite: 200 items, 4 processes killed and frozen at random: none lost, none completed twice', async () => {
    check(await chaosRun({ kind: 'sqlite', items: 200, workers: 4, killEveryMs: [150, 400], freezeEveryMs: 700, timeoutMs: 90_000 }));
  }, 120_000);

  it('PostgreSQL: the same', async () => {
    check(await chaosRun({ kind: 'postgres', target: inject('postgresUrl'), items: 200, workers: 4, killEveryMs: [150, 400], freezeEveryMs: 700, timeoutMs: 90_000 }));
  }, 120_000);

  // without a server the setup's banner says so; this test then reports itself skipped
  it.skipIf(!inject('redisUrl'))('Redis: the same', async () => {
    check(await chaosRun({ kind: 'redis', target: inject('redisUrl'), items: 200, workers: 4, killEveryMs: [150, 400], freezeEveryMs: 700, timeoutMs: 90_000 }));
  }, 120_000);
});

describe('clock skew', () => {
  // workers whose clocks are ten minutes apart: if lease times came from their clocks, the one
  // behind would write leases the store already considers expired and a reaper would hand its
  // items to others while it works; with the store's clock nothing of the sort happens. (A 5 s
  // lease keeps a busy CI machine's scheduling hiccups from expiring one for real.)
  const skewsMs = [-600_000, 600_000, 0, 300_000];
  const targets = { sqlite: undefined, postgres: inject('postgresUrl'), redis: inject('redisUrl') };
  for (const kind of ['sqlite', 'postgres', 'redis'] as const) {
    it.skipIf(kind === 'redis' && !targets.redis)(`${kind}: workers minutes apart never hold one item at once, and no lease is reaped`, async () => {
      const result = await chaosRun({ kind, target: targets[kind], items: 150, workers: 4, skewsMs, exclusive: true, ttlMs: 5_000, timeoutMs: 90_000 });
      expect(result.otherErrors).toEqual([]);
      expect(result).toMatchObject({ ok: true, lost: 0, duplicates: 0, overlaps: 0, reaped: 0, leaseLost: 0, linearizable: true });
    }, 120_000);
  }
});
