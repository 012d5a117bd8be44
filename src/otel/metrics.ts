/**
 * The metrics of `leasehold/otel`: the transition counter and pickup delays from the tracker's
 * events, and the items gauge from `tracker.stats()`. Internal.
 * @module
 */
import type { Attributes, Histogram, Meter } from '@opentelemetry/api';
import type { InstrumentableTracker } from './index.js';

/** `messaging.process.duration`'s buckets, in seconds, as the messaging conventions advise. */
const PROCESS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
/** `leasehold.pickup.delay`'s buckets, in seconds: the same, then on to an hour of backlog. */
const PICKUP_BUCKETS = [...PROCESS_BUCKETS, 30, 60, 300, 900, 3600];

/**
 * Creates the instruments and starts recording; `handlerDuration` is for the spans of handlers,
 * and `stop()` removes the listeners and the gauge's callback.
 */
export function startMetrics(
  tracker: InstrumentableTracker,
  meter: Meter,
  { statsEvery, statsWait, base }: { readonly statsEvery: number; readonly statsWait: number; readonly base: Attributes },
): { readonly handlerDuration: Histogram; stop(): void } {
  const transitions = meter.createCounter('leasehold.transitions', {
    description: 'State machine transitions, by stage and outcome (claimed, completed, retried, failed, released, reaped, lease_lost).',
    unit: '{transition}',
  });
  // bucket advice in seconds (an SDK without advice, before @opentelemetry/api 1.7, ignores it
  // and uses its defaults, which are for milliseconds and put every handler under 5 s in one)
  const handlerDuration = meter.createHistogram('messaging.process.duration', {
    description: 'How long the handlers given to work() ran, by stage and outcome.',
    unit: 's',
    advice: { explicitBucketBoundaries: PROCESS_BUCKETS },
  });
  const pickupDelay = meter.createHistogram('leasehold.pickup.delay', {
    description: 'How long an item had been claimable before it was claimed, by stage.',
    unit: 's',
    advice: { explicitBucketBoundaries: PICKUP_BUCKETS },
  });
  const items = meter.createObservableGauge('leasehold.items', {
    description: 'Items per status (from tracker.stats(), read at most every statsIntervalMs).',
    unit: '{item}',
  });

  // --- metrics from the tracker's events (every transition, whoever made it) ---
  const count = (stage: string, outcome: string) => transitions.add(1, { ...base, 'messaging.destination.name': stage, 'leasehold.outcome': outcome });
  const offs = [
    tracker.on('claimed', (e) => {
      count(e.stage, 'claimed');
      pickupDelay.record(Math.max(0, e.waitedMs) / 1_000, { ...base, 'messaging.destination.name': e.stage });
    }),
    tracker.on('completed', (e) => count(e.stage, 'completed')),
    tracker.on('failed', (e) => count(e.stage, e.willRetry ? 'retried' : 'failed')),
    tracker.on('released', (e) => count(e.stage, 'released')),
    tracker.on('reaped', (e) => count(e.stage, 'reaped')),
    tracker.on('leaseLost', (e) => count(e.stage, 'lease_lost')),
  ];

  // --- the items gauge: stats() at most every statsEvery ms, one read shared by overlapping collections ---
  let last: { at: number; byStatus: Record<string, number> } | undefined;
  let reading: Promise<Record<string, number>> | undefined;
  const observe = async (result: { observe(value: number, attributes?: Attributes): void }) => {
    // the monotonic clock: counts read before a wall clock stepped back would stay for as long
    let byStatus = last && performance.now() - last.at < statsEvery ? last.byStatus : undefined;
    if (!byStatus) {
      reading ??= tracker
        .stats()
        .then((stats) => {
          last = { at: performance.now(), byStatus: { ...stats.byStatus, ...stats.undeclared } as Record<string, number> };
          return last.byStatus;
        })
        .finally(() => (reading = undefined));
      let timer: ReturnType<typeof setTimeout> | undefined;
      // a read that hangs (a dead connection) holds up no collection: past the wait the last
      // counts are reported, and the read stays the one shared until it ends
      const waited = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), statsWait);
        timer.unref?.();
      });
      try {
        byStatus = (await Promise.race([reading, waited])) ?? last?.byStatus;
      } catch {
        // the store is unreachable: report the last counts rather than failing the whole collection
        byStatus = last?.byStatus;
      } finally {
        clearTimeout(timer);
      }
    }
    for (const [status, n] of Object.entries(byStatus ?? {})) result.observe(n, { ...base, 'leasehold.status': status });
  };
  items.addCallback(observe);

  return {
    handlerDuration,
    stop() {
      for (const off of offs.splice(0)) off();
      items.removeCallback(observe);
    },
  };
}
