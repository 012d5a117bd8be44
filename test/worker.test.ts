import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ConfigError, HandlerTimeoutError, LeaseLostError, Tracker, type Lease } from '../src/index.js';
import { startHeartbeat } from '../src/heartbeat.js';
import { IdleTimer } from '../src/wake.js';
import { MemoryStore } from '../src/stores/memory.js';

function jobs(options: { ttlMs?: number; clock?: () => number; maxAttempts?: number } = {}) {
  return new Tracker(jobsDefinition(new MemoryStore(options.clock ? { clock: options.clock } : {}), options));
}

function jobsDefinition(store: MemoryStore, options: { ttlMs?: number; maxAttempts?: number } = {}) {
  return {
    store,
    statuses: ['queued', 'running', 'done', 'skipped', 'failed'],
    initial: 'queued',
    key: z.object({ id: z.number() }),
    data: z.object({ result: z.string().optional() }),
    stages: { run: { from: 'queued', active: 'running', done: ['done', 'skipped'], failed: 'failed' } },
    lease: { ttlMs: options.ttlMs ?? 1_000 },
    retry: { maxAttempts: options.maxAttempts ?? 3, backoff: () => 0 },
  } as const;
}

const until = async (cond: () => boolean | Promise<boolean>, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('tracker.work()', () => {
  it('runs every item once with at most `concurrency` handlers at a time', async () => {
    const tracker = jobs();
    for (let id = 0; id < 40; id++) await tracker.track({ id });
    let running = 0;
    let peak = 0;
    const seen: number[] = [];
    const worker = tracker.work(
      'run',
      async (lease) => {
        running++;
        peak = Math.max(peak, running);
        seen.push(lease.key.id);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        return { data: { result: `r${lease.key.id}` } };
      },
      { concurrency: 4, batchSize: 3, owner: 'w1' },
    );
    await until(async () => (await tracker.stats()).byStatus.done === 40);
    await worker.stop();
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThan(1);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect((await tracker.get({ id: 7 }))!.data.result).toBe('r7');
  });

  it('turns a thrown error into fail, retries, and completes to the returned status', async () => {
    const tracker = jobs();
    await tracker.track({ id: 1 });
    const failed: boolean[] = [];
    tracker.on('failed', (e) => failed.push(e.willRetry));
    const worker = tracker.work('run', async (lease) => {
      if (lease.attempt < 3) throw new Error(`flaky ${lease.attempt}`);
      return { to: 'skipped' as const };
    });
    await until(async () => (await tracker.get({ id: 1 }))!.status === 'skipped');
    await worker.stop();
    expect(failed).toEqual([true, true]);
    expect((await tracker.get({ id: 1 }))!.lastError).toBe('Error: flaky 2');
  });

  it('renews the lease while a handler runs longer than the ttl, so a reaper never takes it', async () => {
    const tracker = jobs({ ttlMs: 300 });
    await tracker.track({ id: 1 });
    let renewed = 0;
    let reaped = 0;
    tracker.on('renewed', () => renewed++);
    tracker.on('reaped', () => reaped++);
    const worker = tracker.work('run', async () => new Promise((r) => setTimeout(r, 1_000)), { reapIntervalMs: 20 });
    await until(async () => (await tracker.get({ id: 1 }))!.status === 'done');
    await worker.stop();
    expect(renewed).toBeGreaterThanOrEqual(5);
    expect(reaped).toBe(0);
  });

  it('aborts lease.signal when the lease is lost, and the late result is refused without crashing', async () => {
    let now = 0;
    const tracker = jobs({ ttlMs: 1_000, clock: () => now });
    await tracker.track({ id: 1 });
    const lost: string[] = [];
    tracker.on('leaseLost', (e) => lost.push(e.operation));
    let aborted = false;
    let holding: Lease | undefined;
    const worker = tracker.work(
      'run',
      async (lease) => {
        // the first lease (the worker claims the reaped item again, with a new one)
        if (holding) return;
        holding = lease;
        await new Promise<void>((resolve) => lease.signal.addEventListener('abort', () => resolve()));
        aborted = true;
      },
      { heartbeatMs: 20 },
    );
    await until(() => holding !== undefined);
    now += 5_000; // the store's clock moves past the lease; a reaper takes the item
    expect((await tracker.reapStale()).retried).toBe(1);
    await until(() => aborted);
    await worker.stop({ timeoutMs: 100 });
    expect(lost.length).toBeGreaterThanOrEqual(1);
    expect(holding!.settled).toBe(true);
    // the handler learns why: the lease was lost (not the reason a settled lease carries)
    expect(holding!.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(String(holding!.signal.reason)).toMatch(/no longer held/);
  });

  it('wakes at once when an item is tracked in the same process, even with a long poll delay', async () => {
    const tracker = jobs();
    const worker = tracker.work('run', async () => {}, { pollMinMs: 10_000, pollMaxMs: 10_000 });
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    await tracker.track({ id: 1 });
    await until(async () => (await tracker.get({ id: 1 }))!.status === 'done', 2_000);
    expect(Date.now() - started).toBeLessThan(2_000);
    await worker.stop();
  });

  it('stop() waits for in-flight handlers, and releases what is left at the deadline', async () => {
    const tracker = jobs({ ttlMs: 60_000 });
    await tracker.track({ id: 1 });
    await tracker.track({ id: 2 });
    let finish: () => void = () => {};
    const worker = tracker.work(
      'run',
      async (lease) => {
        if (lease.key.id === 1) await new Promise((r) => setTimeout(r, 30));
        else await new Promise<void>((r) => (finish = r));
      },
      { concurrency: 2 },
    );
    await until(async () => (await tracker.stats()).byStatus.running === 2);
    await worker.stop({ timeoutMs: 200 });
    expect(worker.running).toBe(false);
    const one = (await tracker.get({ id: 1 }))!;
    const two = (await tracker.get({ id: 2 }))!;
    expect(one.status).toBe('done');
    expect(two).toMatchObject({ status: 'queued', attempts: 0 });
    finish();
  });

  it('keeps going when the store fails, reporting each error', async () => {
    const tracker = jobs();
    await tracker.track({ id: 1 });
    const store = tracker.store as MemoryStore;
    const original = store.update.bind(store);
    let failures = 2;
    store.update = async (...args) => {
      if (failures-- > 0) throw new Error('connection reset');
      return original(...args);
    };
    const errors: unknown[] = [];
    tracker.on('error', (e) => errors.push(e.error));
    const worker = tracker.work('run', async () => {}, { pollMinMs: 5 });
    await until(async () => (await tracker.get({ id: 1 }))!.status === 'done');
    await worker.stop();
    expect(errors).toHaveLength(2);
    expect(String(errors[0])).toMatch(/\[leasehold\] \[memory\] `claimBatch` failed: connection reset/);
  });

  it('rejects bad options with a ConfigError naming the option', () => {
    const tracker = jobs();
    expect(() => tracker.work('run', async () => {}, { concurrency: 0 })).toThrow(/`work.concurrency`.*positive|integer/);
    expect(() => tracker.work('nope' as never, async () => {})).toThrow(ConfigError);
    expect(() => tracker.work('run', async () => {}, { heartbeatMs: 5_000 })).toThrow(/shorter than the lease ttl/);
    // a misspelt option would be ignored, its default used without a word
    expect(() => tracker.work('run', async () => {}, { concurency: 4 } as never)).toThrow(/`work.concurency`: no such option; did you mean `work.concurrency`\?/);
    expect(() => tracker.work('run', async () => {}, { retention: { status: 'done', olderThan: 1_000 } } as never)).toThrow(
      /`work.retention.olderThan`: no such option; did you mean `work.retention.olderThanMs`\?/,
    );
    void LeaseLostError;
  });
});

describe('logger option', () => {
  it('accepts a console-like logger: failures and lost leases at warn, store faults at error', async () => {
    const lines: Array<[string, string]> = [];
    const logger = {
      debug: (_f: object, m: string) => void lines.push(['debug', m]),
      warn: (_f: object, m: string) => void lines.push(['warn', m]),
      error: (_f: object, m: string) => void lines.push(['error', m]),
    };
    const tracker = new Tracker({
      store: new MemoryStore(),
      statuses: ['queued', 'running', 'done', 'failed'],
      initial: 'queued',
      key: z.object({ id: z.number() }),
      stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } },
      logger,
    });
    await tracker.track({ id: 1 });
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    await tracker.fail(lease, new Error('boom'));
    await expect(tracker.complete(lease)).rejects.toThrow(LeaseLostError);
    expect(lines.map(([level]) => level)).toEqual(['debug', 'warn']);
    expect(lines[1]![1]).toMatch(/run: failed, will retry: Error: boom/);
    // a second settle of a lease this process already settled says so, without a warning
    await expect(tracker.complete(lease)).rejects.toThrow(/already failed by this process/);
  });
});

describe('the worker at its edges', () => {
  it('a handler result the store refuses is recorded: the lease is failed for good with the real cause', async () => {
    const tracker = jobs();
    await tracker.track({ id: 1 });
    await tracker.track({ id: 2 });
    const worker = tracker.work('run', async (lease) =>
      lease.key.id === 1 ? { data: { result: 42 as never } } : { to: 'nope' as never },
    );
    await until(async () => (await tracker.stats()).byStatus.failed === 2);
    await worker.stop();
    const one = (await tracker.get({ id: 1 }))!;
    expect(one).toMatchObject({ status: 'failed', attempts: 1 });
    expect(one.lastError).toMatch(/^ValidationError: .*invalid data \(result:/);
    expect((await tracker.get({ id: 2 }))!.lastError).toMatch(/^ConfigError: .*`nope` is not a done status/);
  });

  it('a renew that never returns still aborts lease.signal once the lease cannot be proven held', async () => {
    const tracker = jobs({ ttlMs: 300 });
    await tracker.track({ id: 1 });
    const store = tracker.store as MemoryStore;
    const original = store.update.bind(store);
    // a half-open connection: renews (guarded updates that only move the deadline) hang forever
    store.update = (cond, change, options) =>
      cond.fence !== undefined && change.status === 'running' ? new Promise(() => {}) : original(cond, change, options);
    let reason: unknown;
    const worker = tracker.work(
      'run',
      (lease) => new Promise<void>((resolve) => lease.signal.addEventListener('abort', () => ((reason = lease.signal.reason), resolve()))),
      { heartbeatMs: 50, renewTimeoutMs: 40, reapIntervalMs: false },
    );
    await until(() => reason !== undefined);
    expect(String(reason)).toMatch(/could not be renewed for a whole ttl \(300 ms\)/);
    await worker.stop({ timeoutMs: 100 });
  });

  it('stop() is not held past its timeout by a claim that hangs; what that claim returns later is released', async () => {
    const tracker = jobs();
    const store = tracker.store as MemoryStore;
    const original = store.update.bind(store);
    let answer: (() => void) | undefined;
    let claims = 0;
    // a claim-next sent over a dead connection: it answers only when the test says so
    store.update = (cond, change, options) => {
      if (change.status !== 'running' || cond.fence !== undefined) return original(cond, change, options);
      claims++;
      return new Promise((resolve, reject) => (answer = () => original(cond, change, options).then(resolve, reject)));
    };
    const handled: number[] = [];
    const worker = tracker.work('run', (lease) => void handled.push(lease.key.id), { reapIntervalMs: false });
    await until(() => answer !== undefined);
    await tracker.track({ id: 1 });
    await worker.stop({ timeoutMs: 50 });
    // the claim comes back after the stop: its item is handed back, not handled
    answer!();
    await until(async () => (await tracker.get({ id: 1 }))!.status === 'queued' && (await tracker.get({ id: 1 }))!.attempts === 0);
    expect(handled).toEqual([]);
    expect(claims).toBe(1);
  });

  it('the watchdog aborts lease.signal when the ttl runs out, also when the heartbeat does not divide the ttl', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const tracker = jobs({ ttlMs: 300 });
      await tracker.track({ id: 1 });
      const lease = (await tracker.claim('run', { owner: 'w' }))!;
      // renews hang (a half-open connection); a renew every 290 ms checked the ttl at 290 and 580
      const stop = startHeartbeat(lease, { ttlMs: 300, everyMs: 290, timeoutMs: 10_000, store: 'memory', renew: () => new Promise(() => {}), report: () => {} });
      await vi.advanceTimersByTimeAsync(299);
      expect(lease.signal.aborted).toBe(false);
      await vi.advanceTimersByTimeAsync(2);
      expect(lease.signal.aborted).toBe(true);
      expect(String(lease.signal.reason)).toMatch(/could not be renewed for a whole ttl \(300 ms\)/);
      stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('renews that never answer stay counted after their timeout: at most ttl/heartbeat of them are sent', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const tracker = jobs({ ttlMs: 300 });
      await tracker.track({ id: 1 });
      const lease = (await tracker.claim('run', { owner: 'w' }))!;
      // every other renew hangs (a bad connection in a pool), the others renew the lease
      let sent = 0;
      let hanging = 0;
      const renew = (l: typeof lease) => (sent++ % 2 === 0 ? (hanging++, new Promise(() => {})) : tracker.renew(l));
      const stop = startHeartbeat(lease, { ttlMs: 300, everyMs: 100, timeoutMs: 50, store: 'memory', renew, report: () => {} });
      await vi.advanceTimersByTimeAsync(3_000);
      // three hung calls fill the cap; with no renew sent after them, the lease runs out
      expect(hanging).toBe(3);
      expect(lease.signal.aborted).toBe(true);
      stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('a renew that fails while a completion is under way is no lost lease: no leaseLost, the lease completes', async () => {
    const tracker = jobs();
    await tracker.track({ id: 1 });
    const store = tracker.store as MemoryStore;
    const original = store.update.bind(store);
    // the store applies the completion at once, and its answer arrives when `answer` is called
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    let applied!: () => void;
    const isApplied = new Promise<void>((resolve) => (applied = resolve));
    store.update = async (cond, change, options) => {
      const rows = await original(cond, change, options);
      if (change.status === 'done') (applied(), await answered);
      return rows;
    };
    const events: string[] = [];
    for (const name of ['leaseLost', 'completed'] as const) tracker.on(name, () => events.push(name));
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    const completing = tracker.complete(lease);
    await isApplied;
    // a heartbeat's renew sent now finds the item done: refused, but the lease was not lost
    await expect(tracker.renew(lease)).rejects.toBeInstanceOf(LeaseLostError);
    answer();
    await completing;
    expect(events).toEqual(['completed']);
    expect(lease.signal.reason).not.toBeInstanceOf(LeaseLostError);
  });

  it('reaps by default: an item left by a dead worker is taken over by a worker with default options', async () => {
    const tracker = jobs({ ttlMs: 200 });
    await tracker.track({ id: 1 });
    // a worker that died holding the lease
    const dead = (await tracker.claim('run', { owner: 'dead' }))!;
    const worker = tracker.work('run', async () => ({ to: 'done' as const }));
    await until(async () => (await tracker.get({ id: 1 }))!.status === 'done');
    await worker.stop();
    expect((await tracker.get({ id: 1 }))!).toMatchObject({ lastError: 'lease expired', fence: dead.fence + 2 });
    const off = tracker.work('run', async () => {}, { reapIntervalMs: false });
    await off.stop();
    expect(() => tracker.work('run', async () => {}, { reapIntervalMs: 0 })).toThrow(/`work.reapIntervalMs`/);
  });

  it('errors nobody listens to go to stderr, rate-limited', async () => {
    const tracker = jobs();
    const store = tracker.store as MemoryStore;
    store.update = async () => {
      throw new Error('connection reset by peer');
    };
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    try {
      const worker = tracker.work('run', async () => {}, { pollMinMs: 1, pollMaxMs: 2, reapIntervalMs: false });
      await until(() => written.length >= 5 && (worker.processed === 0));
      await new Promise((r) => setTimeout(r, 100));
      await worker.stop();
    } finally {
      spy.mockRestore();
    }
    expect(written[0]).toMatch(/\[leasehold\] claim failed: StoreError: \[leasehold\] \[memory\] `claimBatch` failed: connection reset by peer/);
    expect(written[0]).toMatch(/A passing fault/);
    // a burst, then quiet: dozens of failed polls printed at most a handful of lines
    expect(written.length).toBeLessThanOrEqual(5);
  });

  it('drain() resolves once everything claimable has been handled', async () => {
    const tracker = jobs();
    for (let id = 0; id < 5; id++) await tracker.track({ id });
    const worker = tracker.work('run', async () => new Promise((r) => setTimeout(r, 5)), { concurrency: 2 });
    await worker.drain();
    expect((await tracker.stats()).byStatus.done).toBe(5);
    await tracker.track({ id: 9 });
    await worker.drain();
    expect((await tracker.get({ id: 9 }))!.status).toBe('done');
    await worker.stop();
  });
});

describe('retention', () => {
  it('a worker with `retention` purges finished items older than `olderThanMs`; a status items wait in is refused', async () => {
    let passed = 0;
    const tracker = jobs({ clock: () => Date.now() + passed });
    for (let id = 0; id < 3; id++) await tracker.track({ id });
    const worker = tracker.work('run', async () => {}, { reapIntervalMs: false });
    await worker.drain();
    await worker.stop();
    // the items finished ten minutes ago by the store's clock
    passed = 10 * 60_000;
    expect(() => tracker.work('run', async () => {}, { retention: { status: 'queued', olderThanMs: 1 } })).toThrow(/`work.retention.status`.*not a finished status/);
    const patient = tracker.work('run', async () => {}, { reapIntervalMs: false, retention: { status: 'done', olderThanMs: 60 * 60_000, everyMs: 10 } });
    await new Promise((r) => setTimeout(r, 100));
    await patient.stop();
    expect((await tracker.stats()).byStatus.done).toBe(3);
    const keeper = tracker.work('run', async () => {}, { reapIntervalMs: false, retention: { status: 'done', olderThanMs: 5 * 60_000, everyMs: 10 } });
    await until(async () => (await tracker.stats()).total === 0);
    await keeper.stop();
  });

  it('measures `olderThanMs` by the store\'s clock, not by a worker clock that runs ahead of it', async () => {
    // the store's clock is ten minutes behind this process's
    let behind = 10 * 60_000;
    const tracker = jobs({ clock: () => Date.now() - behind });
    const store = tracker.store as MemoryStore;
    const remove = store.delete.bind(store);
    let purges = 0;
    store.delete = (cond, options) => (purges++, remove(cond, options));
    for (let id = 0; id < 3; id++) await tracker.track({ id });
    const worker = tracker.work('run', async () => {}, { reapIntervalMs: false, retention: { status: 'done', olderThanMs: 5 * 60_000, everyMs: 5 } });
    await worker.drain();
    const after = purges;
    await until(() => purges >= after + 2);
    // just finished by the store's clock: kept (by this process's clock they finished 10 min ago)
    expect((await tracker.stats()).byStatus.done).toBe(3);
    behind -= 6 * 60_000; // six minutes pass on the store
    await until(async () => (await tracker.stats()).total === 0);
    await worker.stop();
  });

  it('runs one purge of a status at a time: one that outlasts `everyMs` is not joined by more', async () => {
    const tracker = jobs();
    const store = tracker.store as MemoryStore;
    const remove = store.delete.bind(store);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let purges = 0;
    // the first purge hangs (a slow delete on a big table) until the test opens the gate
    store.delete = async (cond, options) => {
      purges++;
      await gate;
      return remove(cond, options);
    };
    const worker = tracker.work('run', async () => {}, { reapIntervalMs: false, retention: { status: 'done', olderThanMs: 1, everyMs: 5 } });
    await until(() => purges === 1);
    // many intervals pass while it hangs
    await new Promise((r) => setTimeout(r, 60));
    expect(purges).toBe(1);
    open();
    await until(() => purges >= 2);
    await worker.stop();
  });
});

describe('the worker at its edges: options, pauses, drains, reaps', () => {
  /** A promise and the function that resolves it. */
  const gate = () => {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { opened, open };
  };
  /** Lets pending callbacks and promise chains run a while (a negative check, not a clock). */
  const settleTurns = async (n = 20) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };

  it('work behind many items parked at their claim (maxAttempts lowered) is not left for a poll delay, and drain() waits for it', async () => {
    const store = new MemoryStore();
    const before = new Tracker(jobsDefinition(store, { maxAttempts: 3 }));
    // 25 items with one attempt spent: a claim-next parks at most 10 rounds of them
    for (let id = 0; id < 25; id++) {
      await before.track({ id });
      await before.fail((await before.claim('run', { owner: 'w', key: { id } }))!, new Error('boom'));
    }
    await before.track({ id: 99 });
    const lowered = new Tracker(jobsDefinition(store, { maxAttempts: 1 }));
    lowered.on('failed', () => {});
    const handled: number[] = [];
    const worker = lowered.work('run', (lease) => void handled.push(lease.key.id), { reapIntervalMs: false, batchSize: 1, pollMinMs: 60_000, pollMaxMs: 60_000 });
    try {
      await worker.drain();
      expect(handled).toEqual([99]);
      expect((await lowered.stats()).byStatus).toMatchObject({ queued: 0, done: 1, failed: 25 });
    } finally {
      await worker.stop();
    }
  });

  it('refuses intervals past the longest timer Node runs, and a bad owner, naming the option', async () => {
    const tracker = jobs();
    const tooLong = 2_147_483_648;
    for (const option of ['pollMinMs', 'pollMaxMs', 'heartbeatMs', 'renewTimeoutMs', 'stopTimeoutMs', 'reapIntervalMs'] as const) {
      expect(() => tracker.work('run', async () => {}, { [option]: tooLong }), option).toThrow(new RegExp(`\`work.${option}\`.*longest timer`));
    }
    expect(() => tracker.work('run', async () => {}, { retention: { status: 'done', olderThanMs: 0, everyMs: tooLong } })).toThrow(/`work.retention.everyMs`/);
    const running = tracker.work('run', async () => {});
    await expect(running.stop({ timeoutMs: tooLong })).rejects.toThrow(/`stop.timeoutMs`.*<= 2147483647/);
    await running.stop();
    // a ttl is a lease length, not a timer: a long one is fine, and the timers made from it are cut
    const month = jobs({ ttlMs: 30 * 24 * 3_600_000 });
    expect(() => month.work('run', async () => {}).stop()).not.toThrow();
    expect(() => tracker.work('run', async () => {}, { owner: '' })).toThrow(ConfigError);
    expect(() => tracker.work('run', async () => {}, { owner: 42 as never })).toThrow(/`work.owner`/);
  });

  it('a delay whose deadline would not be a valid Date is refused before anything is written', async () => {
    const tracker = jobs();
    await expect(tracker.track({ id: 1 }, {}, { delayMs: 1e16 })).rejects.toThrow(/`track.delayMs`.*valid Date/);
    expect(await tracker.get({ id: 1 })).toBeNull();
    await tracker.track({ id: 2 });
    await expect(tracker.reschedule({ id: 2 }, { delayMs: 1e16 })).rejects.toThrow(/`reschedule.delayMs`/);
    expect((await tracker.get({ id: 2 }))!.notBefore?.getTime() ?? 0).toBeLessThanOrEqual(Date.now());
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    await expect(tracker.release(lease, { delayMs: 1e16 })).rejects.toThrow(/`release.delayMs`/);
    expect(lease.settled).toBe(false);
  });

  it('a work() call that throws leaves no timer running', () => {
    vi.useFakeTimers();
    try {
      const tracker = jobs();
      expect(() =>
        tracker.work('run', async () => {}, { retention: [{ status: 'done', olderThanMs: 0, everyMs: 50 }, { status: 'queued', olderThanMs: 0 }] }),
      ).toThrow(/`work.retention\[1\].status`/);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('after a failed claim the worker pauses, and wake-ups do not cut the pause short; stop() does', async () => {
    const tracker = jobs();
    const store = tracker.store as MemoryStore;
    let claims = 0;
    store.update = async () => {
      claims++;
      throw new Error('canceling statement due to statement timeout');
    };
    tracker.on('error', () => {});
    const worker = tracker.work('run', async () => {}, { reapIntervalMs: false, pollMinMs: 60_000, pollMaxMs: 60_000 });
    await until(() => claims === 1);
    // work arriving in this process wakes idle workers; a failing store is not asked again for it
    for (let id = 0; id < 10; id++) await tracker.track({ id });
    await settleTurns();
    expect(claims).toBe(1);
    await worker.stop();
    expect(claims).toBe(1);
  });

  it('drain() waits for an item tracked while a claim was under way, and resolves at once after stop()', async () => {
    const tracker = jobs();
    const store = tracker.store as MemoryStore;
    const original = store.update.bind(store);
    const answer = gate();
    let first = true;
    // the first claim runs on the store at once, and its (empty) answer arrives when opened
    store.update = async (cond, change, options) => {
      const rows = await original(cond, change, options);
      if (first) (first = false, await answer.opened);
      return rows;
    };
    const worker = tracker.work('run', async () => {}, { reapIntervalMs: false, pollMinMs: 60_000, pollMaxMs: 60_000 });
    await tracker.track({ id: 1 });
    const drained = worker.drain();
    answer.open();
    await drained;
    expect((await tracker.get({ id: 1 }))!.status).toBe('done');
    await worker.stop();
    await worker.drain();
  });

  it('a throwing listener is reported as an error (and an `error` listener that throws goes to stderr)', async () => {
    const tracker = jobs();
    await tracker.track({ id: 1 });
    const errors: string[] = [];
    tracker.on('error', (e) => {
      errors.push(e.operation);
      throw new Error('the error listener broke too');
    });
    tracker.on('completed', () => {
      throw new Error('metrics client broke');
    });
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    try {
      const worker = tracker.work('run', async () => {}, { reapIntervalMs: false });
      await worker.drain();
      await worker.stop();
    } finally {
      spy.mockRestore();
    }
    expect((await tracker.get({ id: 1 }))!.status).toBe('done');
    expect(errors).toEqual(['a `completed` listener']);
    expect(written.join('')).toMatch(/an `error` listener threw: Error: the error listener broke too/);
  });

  // an async listener's rejection was unhandled: Node ended the process, and every handler under
  // way with it
  it('an async listener or logger whose promise rejects is reported as a throwing one is, and the process goes on', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    try {
      const rejectLater = async (what: string) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        throw new Error(what);
      };
      const store = new MemoryStore();
      const logged = new Tracker({ ...jobsDefinition(store), logger: { debug: () => rejectLater('log shipper down'), error: () => rejectLater('log shipper down') } });
      await logged.track({ id: 1 });
      const errors: string[] = [];
      logged.on('error', (e) => void errors.push(`${e.operation}: ${String(e.error)}`));
      logged.on('completed', () => rejectLater('metrics write failed'));
      logged.on('claimed', () => Promise.reject(new Error('audit write failed')));
      const worker = logged.work('run', async () => {}, { reapIntervalMs: false });
      await worker.drain();
      await worker.stop();
      await until(() => errors.length === 2 && written.join('').includes('log shipper down'));
      expect((await logged.get({ id: 1 }))!.status).toBe('done');
      expect(errors.sort()).toEqual(['a `claimed` listener: Error: audit write failed', 'a `completed` listener: Error: metrics write failed']);
      expect(written.join('')).toMatch(/the logger's debug\(\) threw \(Error: log shipper down\) while logging/);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      spy.mockRestore();
      process.off('unhandledRejection', onUnhandled);
    }
  });

  // a handler stuck on a socket without a timeout held its item (renewed) and its slot for as
  // long as the process lived, and nothing said so
  it('handlerTimeoutMs: a handler past it has its signal aborted and its attempt failed at once; it keeps its slot until it ends, and what it returns is not written', async () => {
    const tracker = jobs({ maxAttempts: 2 });
    await tracker.track({ id: 1 });
    await tracker.track({ id: 2 });
    const reasons: unknown[] = [];
    const failed: Array<{ id: number; willRetry: boolean }> = [];
    tracker.on('failed', (e) => void failed.push({ id: e.key.id, willRetry: e.willRetry }));
    let running = 0;
    let peak = 0;
    const worker = tracker.work(
      'run',
      async (lease) => {
        peak = Math.max(peak, ++running);
        try {
          if (lease.key.id === 2) return undefined;
          // item 1 ends only when told, and then answers as if it had finished
          await new Promise((resolve) => lease.signal.addEventListener('abort', resolve));
          reasons.push(lease.signal.reason);
          await new Promise((resolve) => setTimeout(resolve, 20));
          return { data: { result: 'too late' } };
        } finally {
          running--;
        }
      },
      { concurrency: 1, handlerTimeoutMs: 50, reapIntervalMs: false },
    );
    await until(async () => (await tracker.get({ id: 2 }))?.status === 'done' && failed.length === 2);
    await worker.drain();
    await worker.stop();
    expect(failed).toEqual([{ id: 1, willRetry: true }, { id: 1, willRetry: false }]);
    expect(peak).toBe(1);
    expect(reasons).toHaveLength(2);
    expect(reasons[0]).toBeInstanceOf(HandlerTimeoutError);
    expect(reasons[0]).toMatchObject({ key: { id: 1 }, timeoutMs: 50 });
    const item = (await tracker.get({ id: 1 }))!;
    expect(item).toMatchObject({ status: 'failed', attempts: 2, data: {} });
    expect(item.lastError).toMatch(/^HandlerTimeoutError: \[leasehold\] the handler of \{"id":1\} did not finish within `handlerTimeoutMs` \(50 ms\)/);
    expect(() => tracker.work('run', () => {}, { handlerTimeoutMs: 0 })).toThrow(/`work.handlerTimeoutMs`/);
  });

  // the heartbeat renewed the lease of a handler that never ended for as long as the process
  // lived when the timeout's fail did not land: the item stayed held, and no reaper could take it
  it('handlerTimeoutMs: when the fail at the timeout does not land, the lease is no longer renewed, so the reaper takes the item', async () => {
    const store = new MemoryStore();
    const tracker = new Tracker(jobsDefinition(store, { maxAttempts: 3 }));
    await tracker.track({ id: 1 });
    let renews = 0;
    const update = store.update.bind(store);
    store.update = (cond, change, options) => {
      if (change.lastError !== undefined) return Promise.reject(new Error('store refused the write'));
      if (change.status === 'running' && change.attempts === undefined) renews++;
      return update(cond, change, options);
    };
    const errors: string[] = [];
    tracker.on('error', (e) => void errors.push(`${e.operation}: ${String(e.error)}`));
    const worker = tracker.work('run', () => new Promise<void>(() => {}), { handlerTimeoutMs: 60, heartbeatMs: 20, reapIntervalMs: false });
    await until(() => errors.length === 1);
    expect(errors[0]).toMatch(/^fail: StoreError: .*store refused the write/);
    const seen = renews;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(renews).toBe(seen);
    expect(await tracker.get({ id: 1 })).toMatchObject({ status: 'running' });
    await worker.stop({ timeoutMs: 10 });
  });

  // each handler under a limit listens to the worker's stop signal: past 10 of them Node warned of
  // a listener leak
  it('handlerTimeoutMs with many handlers at once: no listener-leak warning', async () => {
    const tracker = jobs();
    for (let id = 0; id < 30; id++) await tracker.track({ id });
    const warnings: string[] = [];
    const onWarning = (warning: Error) => void warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      let started = 0;
      const worker = tracker.work('run', async () => void (started++, await gate), { concurrency: 20, batchSize: 20, handlerTimeoutMs: 60_000, reapIntervalMs: false });
      await until(() => started === 20);
      release();
      await worker.drain();
      await worker.stop();
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('handlerTimeoutMs: a handler that ignores its signal has its item failed for another attempt, and stop() still resolves on time', async () => {
    const tracker = jobs({ maxAttempts: 3 });
    await tracker.track({ id: 1 });
    const worker = tracker.work('run', () => new Promise<void>(() => {}), { handlerTimeoutMs: 30, reapIntervalMs: false });
    await until(async () => (await tracker.get({ id: 1 }))?.lastError?.startsWith('HandlerTimeoutError') === true);
    // back in its from status for another worker (this one's only slot is still taken)
    expect(await tracker.get({ id: 1 })).toMatchObject({ status: 'queued', attempts: 1 });
    expect(worker.inFlight).toBe(1);
    await worker.stop({ timeoutMs: 20 });
    expect(await tracker.get({ id: 1 })).toMatchObject({ status: 'queued', attempts: 1 });
  });

  // a sleep of the longest poll delay the options accept (2^31 - 1 ms) armed a timer one ms longer,
  // which Node fires after 1 ms: an idle worker claimed in a tight loop
  it('an idle sleep of the longest accepted pollMaxMs lasts, rather than overflowing the timer', async () => {
    const timer = new IdleTimer();
    let ended = false;
    const sleeping = timer.sleep(2_147_483_647).then(() => void (ended = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(ended).toBe(false);
    timer.wake();
    await sleeping;
  });

  // a worker read only the earliest due time: once it had handled that item, the next scheduled
  // one waited for a poll on a store that tells of other processes' changes
  it('looks up the next due time again once it used one, on a store that tells of changes (several items scheduled before it started)', async () => {
    const memory = new MemoryStore();
    // a store with wake-ups that this test never sends: only due times wake the worker
    const store = new Proxy(memory, {
      get(target, name) {
        if (name === 'watch') return () => () => {};
        const value: unknown = Reflect.get(target, name, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const elsewhere = new Tracker(jobsDefinition(memory));
    for (const id of [1, 2, 3]) await elsewhere.track({ id }, {}, { delayMs: id * 150 });
    const handled: number[] = [];
    const worker = new Tracker(jobsDefinition(store)).work('run', (lease) => void handled.push(lease.key.id), { pollMinMs: 60_000, pollMaxMs: 60_000, reapIntervalMs: false });
    try {
      await until(() => handled.length === 3);
      expect(handled).toEqual([1, 2, 3]);
    } finally {
      await worker.stop();
    }
  });

  // every worker that saw one outage asked the store again at the same instants (62, 163, 365,
  // 766 ms ... in five processes within 5 ms of each other), the moment it recovered included
  it('spreads its waits after a failed claim and between idle polls by ±25% around the doubling delay (at most pollMaxMs)', async () => {
    const store = new MemoryStore();
    const tracker = new Tracker(jobsDefinition(store));
    await tracker.init();
    let failing = true;
    const update = store.update.bind(store);
    store.update = (cond, change, options) => (failing && options?.ordered ? Promise.reject(new Error('ECONNREFUSED')) : update(cond, change, options));
    tracker.on('error', () => {});
    const waits: number[] = [];
    const real = globalThis.setTimeout;
    const timeouts = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => (waits.push(ms ?? 0), real(fn, ms))) as typeof setTimeout);
    // the low end of the spread, then the high end
    const random = vi.spyOn(Math, 'random').mockReturnValue(0);
    try {
      const worker = tracker.work('run', () => {}, { pollMinMs: 40, pollMaxMs: 1_000, reapIntervalMs: false });
      await until(() => waits.includes(60));
      random.mockReturnValue(0.999999);
      await until(() => waits.includes(200));
      failing = false;
      await worker.drain();
      await worker.stop();
    } finally {
      timeouts.mockRestore();
      random.mockRestore();
    }
    // 0.75 × 40 and 80, then 1.25 × 160: never the bare doubling
    expect(waits).toEqual(expect.arrayContaining([30, 60, 200]));
    for (const bare of [40, 80, 160]) expect(waits).not.toContain(bare);
  });

  it('the shared reaper runs at the shortest interval, also one asked for by a worker that joined later', async () => {
    const tracker = jobs();
    let reaps = 0;
    const reapStale = tracker.reapStale.bind(tracker);
    tracker.reapStale = (...args) => (reaps++, reapStale(...args));
    const slow = tracker.work('run', async () => {}, { reapIntervalMs: 600_000 });
    const quick = tracker.work('run', async () => {}, { reapIntervalMs: 20 });
    await until(() => reaps >= 2);
    await Promise.all([slow.stop(), quick.stop()]);
  });

  it('stop() waits for a reap pass under way, so the caller may close its pool after it', async () => {
    const tracker = jobs();
    const reaping = gate();
    let started = false;
    const reapStale = tracker.reapStale.bind(tracker);
    tracker.reapStale = async (...args) => {
      started = true;
      await reaping.opened;
      return reapStale(...args);
    };
    const worker = tracker.work('run', async () => {}, { reapIntervalMs: 10 });
    await until(() => started);
    let stopped = false;
    const stopping = worker.stop().then(() => (stopped = true));
    await settleTurns();
    expect(stopped).toBe(false);
    reaping.open();
    await stopping;
  });

  it('stop() does not wait past its timeout for a reap stuck on a dead connection', async () => {
    const tracker = jobs();
    let started = false;
    tracker.reapStale = () => ((started = true), new Promise(() => {}));
    const worker = tracker.work('run', async () => {}, { reapIntervalMs: 10 });
    await until(() => started);
    await worker.stop({ timeoutMs: 20 });
    await worker.drain();
  });

  it('retryAll with a stage leaves items another stage released or failed back into its failed status', async () => {
    const tracker = new Tracker({
      store: new MemoryStore(),
      statuses: ['pending', 'running', 'done', 'review', 'reviewing', 'reviewed', 'dead'],
      initial: 'pending',
      key: z.object({ id: z.string() }),
      stages: {
        work: { from: 'pending', active: 'running', done: 'done', failed: 'review' },
        check: { from: 'review', active: 'reviewing', done: 'reviewed', failed: 'dead' },
      },
    });
    await tracker.track({ id: 'a' });
    await tracker.fail((await tracker.claim('work', { owner: 'w' }))!, new Error('boom'), { retry: false });
    // the next stage takes it up from there, and gives it back for later
    await tracker.release((await tracker.claim('check', { owner: 'w' }))!, { delayMs: 60_000 });
    expect(await tracker.retry({ id: 'a' }, { stage: 'work' })).toBeNull();
    expect(await tracker.retryAll({ stage: 'work' })).toBe(0);
    expect((await tracker.get({ id: 'a' }))!).toMatchObject({ status: 'review', stage: 'check' });
  });
});

describe('worker stop() and reporting when the store or the logger misbehaves', () => {
  const never = () => new Promise<never>(() => {});

  it('stop({ timeoutMs }) resolves although the store stops answering while a handler runs', async () => {
    const tracker = jobs({ ttlMs: 60_000 });
    tracker.on('error', () => {});
    const store = tracker.store as MemoryStore;
    await tracker.track({ id: 1 });
    let claimed = false;
    const worker = tracker.work('run', async () => ((claimed = true), never()), { reapIntervalMs: false });
    await until(() => claimed);
    // a dead connection: the release at the stop timeout never answers
    store.update = never;
    await worker.stop({ timeoutMs: 20 });
    expect(worker.running).toBe(false);
  });

  it('at the stop timeout a lease whose complete is under way is left to it, not released beside it', async () => {
    const tracker = jobs({ ttlMs: 60_000 });
    const store = tracker.store as MemoryStore;
    const update = store.update.bind(store);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const sent: string[] = [];
    // completions wait for the gate (a slow majority write); everything else goes through
    store.update = async (cond, change, options) => {
      sent.push(String(change.status));
      if (change.status === 'done') await gate;
      return update(cond, change, options);
    };
    await tracker.track({ id: 1 });
    const worker = tracker.work('run', () => ({ data: { result: 'ok' } }), { reapIntervalMs: false });
    await until(() => sent.includes('done'));
    await worker.stop({ timeoutMs: 10 });
    open();
    await until(async () => (await tracker.get({ id: 1 }))!.status === 'done');
    expect(sent).toEqual(['running', 'done']);
    expect((await tracker.get({ id: 1 }))!.data).toEqual({ result: 'ok' });
  });

  it('says so when a handler finishes after stop() released its lease at the timeout', async () => {
    const tracker = jobs({ ttlMs: 60_000 });
    const reported: string[] = [];
    tracker.on('error', (e) => reported.push(`${e.operation}: ${String(e.error)}`));
    await tracker.track({ id: 1 });
    let finish!: () => void;
    const worker = tracker.work('run', () => new Promise<void>((resolve) => (finish = resolve)), { reapIntervalMs: false });
    await until(() => finish !== undefined);
    await worker.stop({ timeoutMs: 10 });
    expect((await tracker.get({ id: 1 }))!.status).toBe('queued');
    finish();
    await until(() => reported.length > 0);
    expect(reported).toEqual([expect.stringMatching(/^complete: Error: the handler finished after stop\(\) had released its lease/)]);
  });

  /** What a driver throws when the connection drops while the worker shuts down. */
  const connectionReset = () => Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });

  /** Tracks item 1, runs a handler that ends on its aborted signal (throwing or returning), and stops at a 10 ms timeout. */
  const stopWhileHandled = async (tracker: ReturnType<typeof jobs>, ends: 'reject' | 'resolve') => {
    await tracker.track({ id: 1 });
    let started = false;
    const worker = tracker.work(
      'run',
      (lease) =>
        new Promise<void>((resolve, reject) => {
          started = true;
          lease.signal.addEventListener('abort', () => (ends === 'reject' ? reject(lease.signal.reason) : resolve()));
        }),
      { reapIntervalMs: false },
    );
    await until(() => started);
    await worker.stop({ timeoutMs: 10 });
  };

  it.each([
    ['throws on the aborted signal', 'reject'],
    ['returns on the aborted signal', 'resolve'],
  ] as const)('at the stop timeout a handler that %s sends no fail or complete beside the release (the attempt is not counted)', async (_, ends) => {
    const tracker = jobs({ ttlMs: 60_000, maxAttempts: 1 });
    const store = tracker.store as MemoryStore;
    const update = store.update.bind(store);
    const sent: string[] = [];
    // the release answers late (another pooled connection): a settle sent beside it lands first
    store.update = async (cond, change, options) => {
      sent.push(String(change.status));
      if (change.attempts === 'decrement') await new Promise((r) => setTimeout(r, 30));
      return update(cond, change, options);
    };
    const events: string[] = [];
    for (const e of ['released', 'failed', 'completed'] as const) tracker.on(e, () => events.push(e));
    tracker.on('error', () => {}); // the returning handler's result is reported as not written
    await stopWhileHandled(tracker, ends);
    await until(() => events.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(sent).toEqual(['running', 'queued']);
    expect(events).toEqual(['released']);
    expect(await tracker.get({ id: 1 })).toMatchObject({ status: 'queued', attempts: 0 });
  });

  it.each([
    ['throws on the aborted signal', 'reject', ['release']],
    ['returns on the aborted signal', 'resolve', ['release', 'complete']],
  ] as const)('at the stop timeout a handler that %s has its lease released again when the release fails, its outcome not written', async (_, ends, operations) => {
    const tracker = jobs({ ttlMs: 60_000, maxAttempts: 1 });
    const store = tracker.store as MemoryStore;
    const update = store.update.bind(store);
    // the first release fails (a connection reset while shutting down); everything else goes through
    let releases = 0;
    const sent: string[] = [];
    store.update = (cond, change, options) => {
      sent.push(String(change.status));
      return change.attempts === 'decrement' && releases++ === 0
        ? Promise.reject(connectionReset())
        : update(cond, change, options);
    };
    const reported: string[] = [];
    tracker.on('error', (e) => reported.push(e.operation));
    await stopWhileHandled(tracker, ends);
    // not left held for the reaper, which would count the attempt (and park the item) later;
    // nor completed or failed: the handler was cut short, and the attempt is not counted
    await until(() => reported.length === operations.length);
    expect(await tracker.get({ id: 1 })).toMatchObject({ status: 'queued', attempts: 0 });
    expect(sent).toEqual(['running', 'queued', 'queued']);
    expect(reported).toEqual(operations);
  });

  it('at the stop timeout a lease cancelled while its release failed is not reported as released again', async () => {
    const tracker = jobs({ ttlMs: 60_000, maxAttempts: 1 });
    const store = tracker.store as MemoryStore;
    const update = store.update.bind(store);
    let releases = 0;
    // the first release fails after an operator cancelled the item meanwhile; the second finds the lease lost
    store.update = async (cond, change, options) => {
      if (change.attempts === 'decrement' && releases++ === 0) {
        await tracker.cancel({ id: 1 }, { reason: 'operator' });
        throw connectionReset();
      }
      return update(cond, change, options);
    };
    const reported: string[] = [];
    const lost: number[] = [];
    tracker.on('error', (e) => reported.push(e.operation));
    tracker.on('leaseLost', (e) => lost.push(e.fence));
    await stopWhileHandled(tracker, 'resolve');
    await until(() => releases === 2 && lost.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(reported).toEqual(['release']);
    expect(await tracker.get({ id: 1 })).toMatchObject({ status: 'failed', lastError: 'cancelled: operator' });
  });

  it('at the stop timeout a lease whose release fails twice stays held for the reaper, and the report says so', async () => {
    const tracker = jobs({ ttlMs: 60_000, maxAttempts: 1 });
    const store = tracker.store as MemoryStore;
    const update = store.update.bind(store);
    store.update = (cond, change, options) =>
      change.attempts === 'decrement' ? Promise.reject(connectionReset()) : update(cond, change, options);
    const reported: string[] = [];
    tracker.on('error', (e) => reported.push(`${e.operation}: ${String(e.error)}`));
    await stopWhileHandled(tracker, 'resolve');
    await until(() => reported.length === 2);
    expect(reported[1]).toMatch(/^release: Error: stop\(\) could not hand the lease back at its timeout, nor after its handler ended \(.*connection reset.*\); the item stays held until its lease expires/);
    expect(await tracker.get({ id: 1 })).toMatchObject({ status: 'running', attempts: 1 });
  });

  it('a logger that throws neither stops the worker nor fails its claims; stderr says what happened', async () => {
    const boom = () => {
      throw new Error('logger transport closed');
    };
    const store = new MemoryStore();
    const tracker = new Tracker({ ...jobsDefinition(store), logger: { error: boom, warn: boom, debug: boom } });
    const update = store.update.bind(store);
    let failing = true;
    store.update = (cond, change, options) => (failing ? Promise.reject(new Error('ECONNRESET')) : update(cond, change, options));
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      let handled = 0;
      const worker = tracker.work('run', () => void handled++, { reapIntervalMs: false, pollMaxMs: 50 });
      await until(() => stderr.mock.calls.some(([line]) => /the logger's error\(\) threw \(Error: logger transport closed\) while logging: \[leasehold\] claim failed/.test(String(line))));
      failing = false;
      await tracker.track({ id: 1 });
      await until(() => handled === 1);
      await until(async () => (await tracker.get({ id: 1 }))!.status === 'done');
      expect(worker.running).toBe(true);
      await worker.stop();
    } finally {
      stderr.mockRestore();
    }
  });
});
