import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { AsyncLocalStorage } from 'node:async_hooks';
import { context, createNoopMeter, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Context, type ContextManager } from '@opentelemetry/api';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LeaseholdError } from '../src/index.js';
import { instrument, type InstrumentOptions } from '../src/otel/index.js';
import { MemoryStore } from '../src/stores/memory.js';
import { k, makeTracker, TTL } from '../src/testing/definition.js';
import { stderrOf } from './support/stderr.js';

/**
 * leasehold/otel on the memory store, read back through the SDK's in-memory exporters: a span
 * per operation and per handler run, the transition counter, handler durations, pickup delays
 * and the items gauge, and nothing left behind by uninstrument().
 */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: Omit<InstrumentOptions, 'tracerProvider' | 'meterProvider'> = {}) {
  const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
  const tracker = makeTracker(new MemoryStore({ clock: () => clock.now }));
  await tracker.init();
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // collected by hand (forceFlush); the interval only has to be long
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const uninstrument = instrument(tracker, { tracerProvider, meterProvider, ...options });
  cleanups.push(() => uninstrument(), () => meterProvider.shutdown(), () => tracerProvider.shutdown());
  /** The data points of metric `name` exported by a fresh collection. */
  const collect = async (name: string) => {
    exporter.reset();
    await reader.forceFlush();
    const found = exporter
      .getMetrics()
      .flatMap((r) => r.scopeMetrics)
      .flatMap((s) => s.metrics)
      .filter((m) => m.descriptor.name === name);
    return found.flatMap((m) => m.dataPoints as Array<DataPoint<number | Histogram>>);
  };
  const named = (name: string) => spans.getFinishedSpans().filter((s) => s.name === name);
  return { clock, tracker, spans, named, collect, uninstrument, tracerProvider };
}

/**
 * A context manager on AsyncLocalStorage, as @opentelemetry/context-async-hooks'
 * AsyncLocalStorageContextManager (which NodeTracerProvider registers; it is not installed here):
 * without one, no span is ever active and no parent would follow an `await`.
 */
class AsyncContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const run = (self: unknown, args: unknown[]) => this.with(ctx, () => (target as (...a: unknown[]) => unknown).apply(self, args));
    return function (this: unknown, ...args: unknown[]) {
      return run(this, args);
    } as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#storage.disable();
    return this;
  }
}

/** Registers an {@link AsyncContextManager} as the global one until the test ends. */
function useAsyncContext() {
  expect(context.setGlobalContextManager(new AsyncContextManager())).toBe(true);
  cleanups.push(() => void context.disable());
}

const spanId = (span: ReadableSpan | undefined) => span?.spanContext().spanId;
const parentId = (span: ReadableSpan | undefined) => span?.parentSpanContext?.spanId;
const byKey = (spans: ReadableSpan[]) => new Map(spans.map((s) => [JSON.parse(String(attrs(s)['leasehold.key'])).seq as number, s]));

const attrs = (span: ReadableSpan | undefined) => span?.attributes ?? {};
const point = (points: Array<DataPoint<number | Histogram>>, match: Record<string, string>) =>
  points.find((p) => Object.entries(match).every(([key, value]) => p.attributes[key] === value));

describe('leasehold/otel', () => {
  it('records a span per operation with stage, key, fence and outcome, following the messaging conventions', async () => {
    const { clock, tracker, named } = await setup();
    for (const n of [1, 2, 3, 4, 5, 6]) await tracker.track(k(n));

    const a = (await tracker.claim('download', { owner: 'w1', key: k(1) }))!;
    await tracker.renew(a);
    await tracker.complete(a, { data: { bytes: 1 } });
    const b = (await tracker.claim('download', { owner: 'w1', key: k(2) }))!;
    await tracker.fail(b, new Error('boom'));
    const c = (await tracker.claim('download', { owner: 'w1', key: k(3) }))!;
    await tracker.release(c);
    const batch = await tracker.claimBatch('download', { owner: 'w2', limit: 2 });
    expect(batch).toHaveLength(2);
    await tracker.completeBatch(batch);
    const d = (await tracker.claim('download', { owner: 'w3' }))!;
    await tracker.failBatch([{ lease: d, error: new Error('bad'), retry: false }]);
    const e = (await tracker.claim('download', { owner: 'w4', key: k(6) }))!;
    expect(e).not.toBeNull();
    clock.now += TTL + 1;
    expect((await tracker.reapStale()).retried).toBe(1);
    await expect(tracker.complete(e)).rejects.toThrow(/lease/i);

    const [claim] = named('claim download');
    expect(claim!.kind).toBe(SpanKind.CLIENT);
    expect(attrs(claim)).toMatchObject({
      'messaging.system': 'leasehold',
      'messaging.operation.name': 'claim',
      'messaging.operation.type': 'receive',
      'messaging.destination.name': 'download',
      'leasehold.key': JSON.stringify(k(1)),
      'leasehold.fence': a.fence,
      'leasehold.owner': 'w1',
      'leasehold.outcome': 'claimed',
    });
    expect(attrs(named('renew download')[0])).toMatchObject({ 'leasehold.fence': a.fence, 'leasehold.outcome': 'renewed' });
    expect(attrs(named('renew download')[0])).not.toHaveProperty('messaging.operation.type');
    const completes = named('complete download');
    expect(completes.map((s) => attrs(s)['leasehold.outcome'])).toEqual(['completed', 'lease_lost']);
    expect(attrs(completes[0])).toMatchObject({ 'messaging.operation.type': 'settle', 'leasehold.status': 'downloaded', 'leasehold.key': JSON.stringify(k(1)) });
    expect(completes[1]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(attrs(completes[1])).toMatchObject({ 'error.type': 'LeaseLostError', 'leasehold.fence': e.fence });
    expect(attrs(named('fail download')[0])).toMatchObject({ 'leasehold.outcome': 'retried', 'leasehold.status': 'pending', 'leasehold.key': JSON.stringify(k(2)) });
    expect(attrs(named('release download')[0])).toMatchObject({ 'leasehold.outcome': 'released', 'leasehold.key': JSON.stringify(k(3)) });
    expect(attrs(named('claimBatch download')[0])).toMatchObject({ 'messaging.batch.message_count': 2, 'leasehold.outcome': 'claimed' });
    expect(attrs(named('completeBatch download')[0])).toMatchObject({ 'messaging.batch.message_count': 2, 'leasehold.lost': 0, 'messaging.operation.type': 'settle' });
    expect(attrs(named('failBatch download')[0])).toMatchObject({ 'messaging.batch.message_count': 1, 'leasehold.lost': 0 });
    expect(attrs(named('reapStale')[0])).toMatchObject({ 'leasehold.reaped.retried': 1, 'leasehold.reaped.failed': 0, 'leasehold.outcome': 'reaped' });
  });

  it('records empty claims only with traceEmptyClaims', async () => {
    const quiet = await setup();
    expect(await quiet.tracker.claim('download', { owner: 'w' })).toBeNull();
    expect(await quiet.tracker.claimBatch('download', { owner: 'w', limit: 5 })).toEqual([]);
    await quiet.tracker.track(k(1));
    expect(await quiet.tracker.claim('download', { owner: 'w' })).not.toBeNull();
    expect(quiet.spans.getFinishedSpans().map((s) => s.name)).toEqual(['claim download']);

    const loud = await setup({ traceEmptyClaims: true });
    expect(await loud.tracker.claim('download', { owner: 'w' })).toBeNull();
    expect(await loud.tracker.claimBatch('download', { owner: 'w', limit: 5 })).toEqual([]);
    expect(loud.spans.getFinishedSpans().map((s) => [s.name, attrs(s)['leasehold.outcome']])).toEqual([
      ['claim download', 'empty'],
      ['claimBatch download', 'empty'],
    ]);
  });

  it('records reapStale passes that reaped nothing only with traceEmptyReaps', async () => {
    const quiet = await setup();
    expect(await quiet.tracker.reapStale()).toMatchObject({ retried: 0, failed: 0 });
    await quiet.tracker.track(k(1));
    expect(await quiet.tracker.claim('download', { owner: 'w' })).not.toBeNull();
    quiet.clock.now += TTL + 1;
    expect((await quiet.tracker.reapStale()).retried).toBe(1);
    const recorded = quiet.spans.getFinishedSpans().filter((s) => s.name === 'reapStale');
    expect(recorded.map((s) => attrs(s)['leasehold.outcome'])).toEqual(['reaped']);

    const loud = await setup({ traceEmptyReaps: true });
    expect(await loud.tracker.reapStale()).toMatchObject({ retried: 0, failed: 0 });
    expect(loud.spans.getFinishedSpans().map((s) => [s.name, attrs(s)['leasehold.outcome']])).toEqual([['reapStale', 'empty']]);
  });

  it('wraps the handler given to work() in a `process <stage>` span and records its duration', async () => {
    const { tracker, named, collect } = await setup();
    for (const n of [1, 2, 3]) await tracker.track(k(n));
    const worker = tracker.work(
      'download',
      async (lease) => {
        if (lease.key.seq === 2) throw new Error('handler broke');
        return { data: { bytes: lease.key.seq } };
      },
      { reapIntervalMs: false },
    );
    cleanups.push(() => worker.stop());
    await worker.drain();
    await worker.stop();

    const runs = named('process download');
    expect(runs).toHaveLength(3);
    expect(runs.every((s) => s.kind === SpanKind.CONSUMER && attrs(s)['messaging.operation.type'] === 'process')).toBe(true);
    const bySeq = new Map(runs.map((s) => [JSON.parse(String(attrs(s)['leasehold.key'])).seq as number, s]));
    expect(attrs(bySeq.get(1))['leasehold.outcome']).toBe('ok');
    expect(bySeq.get(2)!.status.code).toBe(SpanStatusCode.ERROR);
    expect(bySeq.get(2)!.events.map((e) => e.name)).toContain('exception');
    // each run links to the span of the claim that returned its lease
    const claimSpans = new Map([...named('claimBatch download'), ...named('claim download')].map((s) => [s.spanContext().spanId, s]));
    for (const run of runs) {
      expect(run.links).toHaveLength(1);
      const claim = claimSpans.get(run.links[0]!.context.spanId);
      expect(claim, `the claim span of ${String(attrs(run)['leasehold.key'])}`).toBeDefined();
      expect(run.links[0]!.context.traceId).toBe(claim!.spanContext().traceId);
    }
    // the worker's own settle calls go through the instrumented tracker too
    expect(named('complete download')).toHaveLength(2);
    expect(named('fail download')).toHaveLength(1);

    const durations = await collect('messaging.process.duration');
    expect((point(durations, { 'messaging.destination.name': 'download', 'leasehold.outcome': 'ok' })!.value as Histogram).count).toBe(2);
    expect((point(durations, { 'leasehold.outcome': 'error', 'error.type': 'Error' })!.value as Histogram).count).toBe(1);
  });

  it.each([
    ['in no span', false],
    ['under a span of the caller that started it', true],
  ])("links the worker's settle to the handler's `process` span, with the worker started %s (regression: complete and fail after the handler were not its children)", async (_where, underSpan) => {
    useAsyncContext();
    const { tracker, named, tracerProvider } = await setup();
    const tracer = tracerProvider.getTracer('test');
    for (const n of [1, 2, 3]) await tracker.track(k(n));
    // which handler runs had ended (their span exported) when the worker settled their lease
    const endedBeforeSettle: Record<string, boolean> = {};
    const ended = (key: unknown) => byKey(named('process download')).has((key as { seq: number }).seq);
    tracker.on('completed', (e) => (endedBeforeSettle[`completed ${e.key.seq}`] = ended(e.key)));
    tracker.on('failed', (e) => (endedBeforeSettle[`failed ${e.key.seq}`] = ended(e.key)));
    const start = () =>
      tracker.work(
        'download',
        async (lease) => {
          await tracker.renew(lease);
          if (lease.key.seq === 2) throw new Error('handler broke');
          // a settle under a span of the handler's own keeps that parent
          if (lease.key.seq === 3) await tracer.startActiveSpan('mine', async (mine) => (await tracker.complete(lease), mine.end()));
          return { data: { bytes: lease.key.seq } };
        },
        { reapIntervalMs: false },
      );
    // the worker's loop, and so its settles, run in the context work() was called in
    const worker = underSpan ? tracer.startActiveSpan('startup', (startup) => (startup.end(), start())) : start();
    cleanups.push(() => worker.stop());
    await worker.drain();
    await worker.stop();

    const runs = byKey(named('process download'));
    expect(runs.size).toBe(3);
    for (const run of runs.values()) expect(parentId(run)).toBe(underSpan ? spanId(named('startup')[0]) : undefined);
    // the context manager is real: an operation inside the handler is the process span's child
    for (const [seq, renew] of byKey(named('renew download'))) expect(parentId(renew)).toBe(spanId(runs.get(seq)));

    const completes = byKey(named('complete download'));
    expect([...completes.keys()].sort()).toEqual([1, 3]);
    expect(parentId(completes.get(1))).toBe(spanId(runs.get(1)));
    expect(completes.get(1)!.spanContext().traceId).toBe(runs.get(1)!.spanContext().traceId);
    const fails = byKey(named('fail download'));
    expect([...fails.keys()]).toEqual([2]);
    expect(parentId(fails.get(2))).toBe(spanId(runs.get(2)));
    // the process span still ends with its handler, before the worker settles (k3 settled inside)
    expect(endedBeforeSettle).toEqual({ 'completed 1': true, 'failed 2': true, 'completed 3': false });
    const mine = named('mine')[0];
    expect(parentId(completes.get(3))).toBe(spanId(mine));
    expect(parentId(mine)).toBe(spanId(runs.get(3)));
  });

  it('refuses a second instrument() of one tracker until uninstrument() (regression: spans doubled, the first uninstrument stripped the second)', async () => {
    const { tracker, named, collect, uninstrument } = await setup();
    expect(() => instrument(tracker)).toThrow(LeaseholdError);
    expect(() => instrument(tracker)).toThrow(/already instrumented.*`uninstrument\(\)`/);
    await tracker.track(k(1));
    await tracker.complete((await tracker.claim('download', { owner: 'w' }))!);
    expect(named('claim download')).toHaveLength(1);
    expect(named('complete download')).toHaveLength(1);
    const transitions = await collect('leasehold.transitions');
    expect(point(transitions, { 'leasehold.outcome': 'claimed' })?.value).toBe(1);

    uninstrument();
    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    const again = instrument(tracker, { tracerProvider });
    cleanups.push(again, () => tracerProvider.shutdown());
    // the first uninstrument(), called again, leaves the second instrument() in place
    uninstrument();
    await tracker.track(k(2));
    await tracker.claim('download', { owner: 'w' });
    expect(spans.getFinishedSpans().map((s) => s.name)).toEqual(['claim download']);
    again();
    expect(Object.keys(tracker)).toEqual([]);
  });

  it('counts transitions by stage and outcome and records the pickup delay from `waitedMs`', async () => {
    const { clock, tracker, collect } = await setup();
    const waited: Record<string, number[]> = {};
    tracker.on('claimed', (e) => (waited[e.stage] ??= []).push(e.waitedMs));
    await tracker.track(k(1));
    await tracker.track(k(2));
    clock.now += 5_000;
    const a = (await tracker.claim('download', { owner: 'w', key: k(1) }))!;
    await tracker.complete(a);
    clock.now += 2_000;
    const b = (await tracker.claim('download', { owner: 'w', key: k(2) }))!;
    await tracker.fail(b, new Error('x'), { retry: false });
    const p = (await tracker.claim('process', { owner: 'w', key: k(1) }))!;
    await tracker.release(p);

    const transitions = await collect('leasehold.transitions');
    const n = (stage: string, outcome: string) => point(transitions, { 'messaging.destination.name': stage, 'leasehold.outcome': outcome })?.value;
    expect([n('download', 'claimed'), n('download', 'completed'), n('download', 'failed'), n('process', 'claimed'), n('process', 'released')]).toEqual([2, 1, 1, 1, 1]);
    expect(n('download', 'retried')).toBeUndefined();

    const delays = await collect('leasehold.pickup.delay');
    const download = point(delays, { 'messaging.destination.name': 'download' })!.value as Histogram;
    // one observation per claim, in seconds, of the `claimed` event's waitedMs: how long each
    // item had been claimable on the store's clock (tracked at 0, claimed at 5 s and 7 s; k1
    // became claimable for `process` on its completion at 5 s and was claimed at 7 s)
    expect(waited).toEqual({ download: [5_000, 7_000], process: [2_000] });
    expect(download.count).toBe(2);
    expect(download.sum).toBeCloseTo(waited.download!.reduce((a, b) => a + b, 0) / 1_000, 6);
    // buckets in seconds (the SDK's defaults are for milliseconds: 0, 5, 10, ... put both in one)
    expect(download.buckets.boundaries).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 300, 900, 3600]);
    expect(download.buckets.counts.filter((n) => n > 0)).toEqual([1, 1]);
    const process = point(delays, { 'messaging.destination.name': 'process' })!.value as Histogram;
    expect(process.count).toBe(1);
    expect(process.sum).toBeCloseTo(waited.process![0]! / 1_000, 6);
  });

  it('reports items by status, reading stats() at most every statsIntervalMs', async () => {
    const { tracker, collect } = await setup({ statsIntervalMs: 3_600_000 });
    let reads = 0;
    const stats = tracker.stats.bind(tracker);
    Object.assign(tracker, { stats: () => (reads++, stats()) });
    for (const n of [1, 2, 3]) await tracker.track(k(n));
    await tracker.claim('download', { owner: 'w', key: k(1) });

    const first = await collect('leasehold.items');
    expect(point(first, { 'leasehold.status': 'pending' })?.value).toBe(2);
    expect(point(first, { 'leasehold.status': 'downloading' })?.value).toBe(1);
    expect(reads).toBe(1);
    await tracker.track(k(4));
    // within the interval: the cached counts, no second read
    expect(point(await collect('leasehold.items'), { 'leasehold.status': 'pending' })?.value).toBe(2);
    expect(reads).toBe(1);

    const fresh = await setup({ statsIntervalMs: 1 });
    await fresh.tracker.track(k(1));
    expect(point(await fresh.collect('leasehold.items'), { 'leasehold.status': 'pending' })?.value).toBe(1);
    await fresh.tracker.track(k(2));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(point(await fresh.collect('leasehold.items'), { 'leasehold.status': 'pending' })?.value).toBe(2);
  });

  it('the counts age on the monotonic clock (a wall clock stepped back an hour does not keep them), and statsIntervalMs is checked', async () => {
    const { tracker, collect } = await setup({ statsIntervalMs: 1 });
    let reads = 0;
    const stats = tracker.stats.bind(tracker);
    Object.assign(tracker, { stats: () => (reads++, stats()) });
    await tracker.track(k(1));
    expect(point(await collect('leasehold.items'), { 'leasehold.status': 'pending' })?.value).toBe(1);
    const before = reads;
    const wall = Date.now();
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => wall - 3_600_000);
    try {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await collect('leasehold.items');
      // read again (the SDK itself keeps the sample with the later wall-clock time, which is not ours to judge)
      expect(reads).toBe(before + 1);
    } finally {
      clock.mockRestore();
    }
    for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      expect(() => instrument(makeTracker(new MemoryStore()), { statsIntervalMs: bad })).toThrow(/`instrument.statsIntervalMs`: expected an integer >= 0/);
    }
  });

  it('trackers named on one meter provider keep their metrics and spans apart (`leasehold.tracker`); one left unnamed beside another is said on stderr', async () => {
    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    cleanups.push(() => meterProvider.shutdown(), () => tracerProvider.shutdown());
    const emails = makeTracker(new MemoryStore());
    const invoices = makeTracker(new MemoryStore());
    cleanups.push(instrument(emails, { tracerProvider, meterProvider, name: 'emails', statsIntervalMs: 0 }));
    const said = await stderrOf(async () => void cleanups.push(instrument(invoices, { tracerProvider, meterProvider, name: 'invoices', statsIntervalMs: 0 })));
    expect(said).toBe('');
    for (const n of [1, 2, 3, 4]) await emails.track(k(n));
    await invoices.track(k(1));
    await emails.complete((await emails.claim('download', { owner: 'w' }))!);
    exporter.reset();
    await reader.forceFlush();
    const points = (name: string) => exporter.getMetrics().flatMap((r) => r.scopeMetrics).flatMap((s) => s.metrics).filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints as Array<DataPoint<number | Histogram>>);
    expect(point(points('leasehold.items'), { 'leasehold.tracker': 'emails', 'leasehold.status': 'pending' })?.value).toBe(3);
    expect(point(points('leasehold.items'), { 'leasehold.tracker': 'invoices', 'leasehold.status': 'pending' })?.value).toBe(1);
    expect(point(points('leasehold.transitions'), { 'leasehold.tracker': 'emails', 'leasehold.outcome': 'claimed' })?.value).toBe(1);
    expect(point(points('leasehold.transitions'), { 'leasehold.tracker': 'invoices', 'leasehold.outcome': 'claimed' })).toBeUndefined();
    expect(spans.getFinishedSpans().find((s) => s.name === 'complete download')?.attributes['leasehold.tracker']).toBe('emails');
    // one without a name beside named ones: its points differ from theirs. A second without one,
    // and one with a name taken, are said, naming the fix
    expect(await stderrOf(async () => void cleanups.push(instrument(makeTracker(new MemoryStore()), { meterProvider })))).toBe('');
    const unnamed = await stderrOf(async () => void cleanups.push(instrument(makeTracker(new MemoryStore()), { meterProvider })));
    expect(unnamed).toMatch(/^\[leasehold\] \[otel\] another tracker without a name is already instrumented on this meter provider, so their metrics mix .*Give each tracker a `name` of its own/);
    const taken = await stderrOf(async () => void cleanups.push(instrument(makeTracker(new MemoryStore()), { meterProvider, name: 'emails' })));
    expect(taken).toMatch(/another tracker named `emails` is already instrumented/);
    // with no metrics SDK (the API's no-op meter provider) nothing is recorded, so nothing mixes
    const noop = { getMeter: () => createNoopMeter() };
    const quiet = await stderrOf(async () => {
      for (let i = 0; i < 2; i++) cleanups.push(instrument(makeTracker(new MemoryStore()), { tracerProvider, meterProvider: noop }));
    });
    expect(quiet).toBe('');
    for (const bad of ['', 7, 'x'.repeat(201)]) expect(() => instrument(makeTracker(new MemoryStore()), { meterProvider, name: bad as string })).toThrow(/`instrument.name`: expected text of 1 to 200 characters/);
  });

  it('a stats() read that hangs holds up no collection: the last counts are reported, and one read is shared until it ends', async () => {
    const { tracker, collect } = await setup({ statsIntervalMs: 1, statsTimeoutMs: 20 });
    await tracker.track(k(1));
    expect(point(await collect('leasehold.items'), { 'leasehold.status': 'pending' })?.value).toBe(1);
    // the store stops answering (a dead connection)
    let reads = 0;
    let answer!: () => void;
    const stats = tracker.stats.bind(tracker);
    Object.assign(tracker, { stats: () => (reads++, new Promise<void>((resolve) => (answer = resolve)).then(() => stats())) });
    await tracker.track(k(2));
    await new Promise((resolve) => setTimeout(resolve, 5));
    for (let i = 0; i < 3; i++) expect(point(await collect('leasehold.items'), { 'leasehold.status': 'pending' })?.value).toBe(1);
    expect(reads).toBe(1);
    answer();
    await expect.poll(async () => point(await collect('leasehold.items'), { 'leasehold.status': 'pending' })?.value).toBe(2);
  });

  it('uninstrument() restores the tracker: no own methods, no spans, no new metrics', async () => {
    const { tracker, spans, collect, uninstrument } = await setup();
    const wrapped = Object.keys(tracker);
    expect(wrapped).toEqual(expect.arrayContaining(['claim', 'claimBatch', 'renew', 'complete', 'completeBatch', 'fail', 'failBatch', 'release', 'reapStale', 'work']));
    uninstrument();
    expect(Object.keys(tracker)).toEqual([]);
    await tracker.track(k(1));
    const lease = (await tracker.claim('download', { owner: 'w' }))!;
    await tracker.complete(lease);
    expect(spans.getFinishedSpans()).toEqual([]);
    expect(await collect('leasehold.transitions')).toEqual([]);
    expect(await collect('leasehold.items')).toEqual([]);
  });
});
