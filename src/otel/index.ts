/**
 * OpenTelemetry traces and metrics for a Tracker, on `@opentelemetry/api` (an optional peer
 * dependency): `instrument(tracker)` wraps the tracker's operations and the handlers given to
 * `work()` in spans, and records transitions, handler durations, pickup delays and item counts.
 * The core knows nothing of OpenTelemetry; `uninstrument()` puts the tracker back as it was.
 * See the guide "OpenTelemetry" for the attribute mapping and a Prometheus setup.
 *
 * ```ts
 * import { instrument } from 'leasehold/otel';
 *
 * const uninstrument = instrument(tracker); // the global tracer and meter providers
 * ```
 *
 * @module leasehold/otel
 */
import {
  context,
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type MeterProvider,
  type Span,
  type SpanContext,
  type TracerProvider,
} from '@opentelemetry/api';
import { ConfigError, LeaseholdError, LeaseLostError, type Listener, type TrackerDefinition, type TrackerEvents, type TrackerStats } from '../index.js';
import { describe, requireTimerMs } from '../validate.js';
import { defined, keyId, leaseAttributes, operationType, type Describe } from './attributes.js';
import { startMetrics } from './metrics.js';

/**
 * What {@link instrument} needs of a Tracker (any `Tracker` fits): it reads these and wraps the
 * operations named there, whatever the tracker's statuses, key and data types.
 */
export interface InstrumentableTracker {
  /** The checked definition (stage names and their failed status). */
  readonly definition: TrackerDefinition;
  /** The tracker's typed events, for the transition counter and pickup delays. */
  on<E extends keyof TrackerEvents>(event: E, listener: Listener<TrackerEvents[E]>): () => void;
  /** Counts for the items gauge. */
  stats(): Promise<Pick<TrackerStats<string>, 'byStatus' | 'undeclared'>>;
}

/** Options of {@link instrument}. */
export interface InstrumentOptions {
  /**
   * The tracker's name, recorded as `leasehold.tracker` on every span and data point. Give each
   * tracker that one meter provider records a name of its own: without one, their transitions
   * are summed together, and their item gauges, one status at a time, overwrite each other.
   * Text of 1 to 200 characters.
   */
  readonly name?: string;
  /** Where spans go. @default the global tracer provider (`trace.getTracerProvider()`) */
  readonly tracerProvider?: TracerProvider;
  /** Where metrics go. @default the global meter provider (`metrics.getMeterProvider()`) */
  readonly meterProvider?: MeterProvider;
  /**
   * Record a span for a claim that found nothing. Idle workers poll, so these are many and
   * usually noise; without them, a claim's span is recorded once it returned leases (with the
   * claim's start time, and then without child spans of the store driver).
   * @default false
   */
  readonly traceEmptyClaims?: boolean;
  /**
   * Record a span for a `reapStale` pass that reaped nothing. Every worker's reaper runs a pass
   * every `reapIntervalMs`, so these are many and usually noise; without them, a pass's span is
   * recorded once it reaped (or failed), with the pass's start time.
   * @default false
   */
  readonly traceEmptyReaps?: boolean;
  /**
   * The `leasehold.items` gauge reads `tracker.stats()` at most this often; collections in
   * between report the last counts.
   * @default 10000
   */
  readonly statsIntervalMs?: number;
  /**
   * How long a collection waits for `tracker.stats()`; past it (a hung store connection) the
   * gauge reports the last counts, so that the read does not hold up every other metric.
   * @default 5000
   */
  readonly statsTimeoutMs?: number;
}

/** The instrumentation scope name of the tracer and meter. */
export const SCOPE = 'leasehold';

/** Trackers instrumented now: a second `instrument()` on one of them throws. */
const instrumentedTrackers = new WeakSet<object>();
/** Per meter provider, the names of the trackers it records now (`undefined` for one without). */
const recording = new WeakMap<object, Array<string | undefined>>();

/**
 * Instruments `tracker`: a span per operation (`claim`, `claimBatch`, `renew`, `complete`,
 * `completeBatch`, `fail`, `failBatch`, `release`, `reapStale`) and per handler run inside
 * `work()`, and the metrics `leasehold.transitions`, `messaging.process.duration`,
 * `leasehold.pickup.delay` and `leasehold.items`. Returns `uninstrument()`, which removes it
 * all (workers started while instrumented keep their wrapped handler until they stop).
 * A handler's `process` span is the parent of the `complete`, `fail` or `release` of its lease,
 * the worker's own after the handler ended included, unless that is called under another span.
 *
 * A tracker is instrumented once at a time: calling `instrument()` again before the first
 * `uninstrument()` throws a `LeaseholdError` (two sets of wrappers would record every span and
 * metric twice, and the first `uninstrument()` would strip the second's wrappers). Calling
 * `uninstrument()` more than once does nothing more.
 */
export function instrument(tracker: InstrumentableTracker, options: InstrumentOptions = {}): () => void {
  if (instrumentedTrackers.has(tracker)) {
    throw new LeaseholdError(
      '[leasehold] [otel] This tracker is already instrumented: call the `uninstrument()` that the first `instrument()` returned before instrumenting it again (with other options, say).',
    );
  }
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const traceEmptyClaims = options.traceEmptyClaims ?? false;
  const traceEmptyReaps = options.traceEmptyReaps ?? false;
  const statsEvery = requireTimerMs('instrument.statsIntervalMs', options.statsIntervalMs ?? 10_000, { allowZero: true });
  const statsWait = requireTimerMs('instrument.statsTimeoutMs', options.statsTimeoutMs ?? 5_000, { allowZero: true });
  const definition = tracker.definition;
  const failedStatus = new Map(definition.stages.map((s) => [s.name, s.failed as string]));
  const name = options.name;
  if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > 200)) {
    throw new ConfigError('instrument.name', `expected text of 1 to 200 characters naming the tracker, got ${describe(name)}.`);
  }
  const base: Attributes = name === undefined ? { 'messaging.system': 'leasehold' } : { 'messaging.system': 'leasehold', 'leasehold.tracker': name };
  const provider = options.meterProvider ?? metrics.getMeterProvider();
  let names = recording.get(provider);
  if (!names) recording.set(provider, (names = []));
  // two trackers whose points carry the same attributes: a name taken, or both without one (the
  // API's no-op meter, where no metrics SDK is registered, records nothing to mix)
  const clash =
    meter.constructor.name === 'NoopMeter' ? false
    : name !== undefined ? names.includes(name) && `another tracker named \`${name}\``
    : names.includes(undefined) && 'another tracker without a name';
  if (clash) {
    process.stderr.write(
      `[leasehold] [otel] ${clash} is already instrumented on this meter provider, so their metrics mix (transitions summed, item counts overwriting each other). Give each tracker a \`name\` of its own in instrument()'s options.\n`,
    );
  }
  names.push(name);

  const recorded = startMetrics(tracker, meter, { statsEvery, statsWait, base });

  // --- spans: own properties shadowing the prototype's methods ---
  const target = tracker as unknown as Record<string, unknown>;
  const wrapped: string[] = [];
  /**
   * Per lease given to a handler inside work(): the context of its `process` span, and the span
   * that was active when that span started. Weak, so a lease and its spans go when dropped.
   */
  const handled = new WeakMap<object, { readonly context: Context; readonly under: Span | undefined }>();
  /**
   * Per claimed lease, the span of the claim that returned it: a handler's `process` span links
   * to it (the claim is not its parent: a batch's claim is shared by many runs, and it ended
   * before they started). Weak, as `handled` is.
   */
  const claimedIn = new WeakMap<object, SpanContext>();
  const noteClaimed = (result: unknown, span: Span) => {
    const leases = Array.isArray(result) ? result : [result];
    for (const lease of leases) if (typeof lease === 'object' && lease !== null) claimedIn.set(lease, span.spanContext());
  };
  /** A `process` span's link to the claim of its lease, where that claim was recorded. */
  const linkToClaim = (lease: unknown): Link[] => {
    const claimed = typeof lease === 'object' && lease !== null ? claimedIn.get(lease) : undefined;
    return claimed ? [{ context: claimed }] : [];
  };
  /**
   * The parent of a single-lease settle (complete, fail, release): the lease's `process` span when
   * the caller is where the handler was started from (the worker settling after its handler, in
   * its loop's context, which has the span active at `work()` or none), so a trace links a
   * handler run to its settle although the process span has ended by then. A caller under a
   * span of its own (inside the handler, or one it started around the settle) keeps that parent.
   */
  const settleParent = (lease: unknown): Context | undefined => {
    const run = typeof lease === 'object' && lease !== null ? handled.get(lease) : undefined;
    if (!run) return undefined;
    const active = context.active();
    return trace.getSpan(active) === run.under ? run.context : active;
  };
  const finish = (span: Span, attributes: Attributes, error?: unknown) => {
    span.setAttributes(defined(attributes));
    if (error !== undefined) {
      const lost = error instanceof LeaseLostError;
      span.setAttribute('leasehold.outcome', lost ? 'lease_lost' : 'error');
      span.setAttribute('error.type', (error as { name?: string })?.name ?? 'Error');
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    span.end();
  };
  /** Whether a claim returned leases (`claim`: one or `null`; `claimBatch`: a list). */
  const gotLeases = (result: unknown): boolean => (Array.isArray(result) ? result.length > 0 : result != null);
  /** Whether a reaper pass reaped. */
  const reaped = (result: unknown): boolean => {
    const { retried, failed } = result as { retried: number; failed: number };
    return retried + failed > 0;
  };
  const wrap = (name: string, describe: Describe, stageOf: (args: unknown[]) => string | undefined, parentOf?: (args: unknown[]) => Context | undefined) => {
    const original = target[name] as (...args: unknown[]) => Promise<unknown>;
    const claims = name === 'claim' || name === 'claimBatch';
    // polls (claims, reaper passes) that found nothing are left out unless asked for
    const polls = name === 'reapStale' ? !traceEmptyReaps : claims && !traceEmptyClaims;
    const found = name === 'reapStale' ? reaped : gotLeases;
    target[name] = function instrumented(this: unknown, ...args: unknown[]) {
      const stage = stageOf(args);
      const spanName = stage ? `${name} ${stage}` : name;
      const start = defined({
        // a lease's stage, key and fence are known up front: a span that fails carries them too
        ...(Array.isArray(args[0]) ? {} : leaseAttributes(args[0])),
        ...base,
        'messaging.operation.name': name,
        'messaging.operation.type': operationType[name],
        'messaging.destination.name': stage,
      });
      if (polls) {
        // recorded afterwards, only when the poll found something (see traceEmptyClaims/Reaps)
        const startTime = new Date();
        return original.apply(this, args).then(
          (result) => {
            if (found(result)) {
              const span = tracer.startSpan(spanName, { kind: SpanKind.CLIENT, attributes: start, startTime });
              finish(span, describe(args, result));
              if (claims) noteClaimed(result, span);
            }
            return result;
          },
          (error: unknown) => {
            finish(tracer.startSpan(spanName, { kind: SpanKind.CLIENT, attributes: start, startTime }), {}, error);
            throw error;
          },
        );
      }
      return tracer.startActiveSpan(spanName, { kind: SpanKind.CLIENT, attributes: start }, parentOf?.(args) ?? context.active(), async (span) => {
        try {
          const result = await original.apply(this, args);
          finish(span, describe(args, result));
          if (claims) noteClaimed(result, span);
          return result;
        } catch (error) {
          finish(span, {}, error);
          throw error;
        }
      });
    };
    wrapped.push(name);
  };

  const firstLeaseStage = (args: unknown[]) => (args[0] as { stage?: string } | undefined)?.stage;
  const batchStage = (args: unknown[]) => {
    const first = (args[0] as Array<{ stage?: string; lease?: { stage?: string } }> | undefined)?.[0];
    return first?.stage ?? first?.lease?.stage;
  };
  const itemStatus = (result: unknown) => (result as { status?: string } | undefined)?.status;
  const batchOutcome = (result: unknown): Attributes => {
    const results = (result as Array<{ ok: boolean }> | undefined) ?? [];
    const lost = results.filter((r) => !r.ok).length;
    return { 'messaging.batch.message_count': results.length, 'leasehold.lost': lost, 'leasehold.outcome': lost ? 'partial' : 'ok' };
  };

  wrap('claim', (args, lease) => ({
    ...(lease ? leaseAttributes(lease) : { 'leasehold.key': keyId((args[1] as { key?: unknown } | undefined)?.key) }),
    'leasehold.outcome': lease ? 'claimed' : 'empty',
  }), (args) => args[0] as string);
  wrap('claimBatch', (_args, leases) => ({
    'messaging.batch.message_count': (leases as unknown[]).length,
    'leasehold.outcome': (leases as unknown[]).length ? 'claimed' : 'empty',
  }), (args) => args[0] as string);
  wrap('renew', (args) => ({ ...leaseAttributes(args[0]), 'leasehold.outcome': 'renewed' }), firstLeaseStage);
  const leaseParent = (args: unknown[]) => settleParent(args[0]);
  wrap('complete', (args, item) => ({ ...leaseAttributes(args[0]), 'leasehold.outcome': 'completed', 'leasehold.status': itemStatus(item) }), firstLeaseStage, leaseParent);
  wrap('fail', (args, item) => {
    const lease = args[0] as { stage?: string };
    const status = itemStatus(item);
    return { ...leaseAttributes(lease), 'leasehold.outcome': status === failedStatus.get(lease.stage ?? '') ? 'failed' : 'retried', 'leasehold.status': status };
  }, firstLeaseStage, leaseParent);
  wrap('release', (args) => ({ ...leaseAttributes(args[0]), 'leasehold.outcome': 'released' }), firstLeaseStage, leaseParent);
  // the batch forms settle many leases (of many handler runs, or none: the worker never uses
  // them), so they keep the caller's context
  wrap('completeBatch', (_args, result) => batchOutcome(result), batchStage);
  wrap('failBatch', (_args, result) => batchOutcome(result), batchStage);
  wrap('reapStale', (_args, result) => {
    const r = result as { retried: number; failed: number };
    return { 'leasehold.reaped.retried': r.retried, 'leasehold.reaped.failed': r.failed, 'leasehold.outcome': r.retried + r.failed ? 'reaped' : 'empty' };
  }, () => undefined);

  // --- the handler inside work(): a `process <stage>` span, ended when the handler ends; the
  // parent of the spans of operations called inside it (with a context manager) and of the
  // settle of its lease that follows (see settleParent) ---
  const work = target.work as (stage: string, handler: (lease: unknown) => unknown, options?: object) => unknown;
  target.work = function instrumentedWork(this: unknown, stage: string, handler: (lease: unknown) => unknown, workOptions?: object) {
    if (typeof handler !== 'function') return work.call(this, stage, handler, workOptions);
    const process = (lease: unknown) => {
      const outer = context.active();
      return tracer.startActiveSpan(
        `process ${stage}`,
        {
          kind: SpanKind.CONSUMER,
          attributes: defined({ ...base, 'messaging.operation.name': 'process', 'messaging.operation.type': 'process', ...leaseAttributes(lease) }),
          links: linkToClaim(lease),
        },
        outer,
        async (span) => {
          if (typeof lease === 'object' && lease !== null) handled.set(lease, { context: trace.setSpan(outer, span), under: trace.getSpan(outer) });
          const started = performance.now();
          const record = (outcome: string, error?: string) =>
            recorded.handlerDuration.record((performance.now() - started) / 1_000, {
              ...base,
              'messaging.operation.name': 'process',
              'messaging.destination.name': stage,
              'leasehold.outcome': outcome,
              ...(error ? { 'error.type': error } : {}),
            });
          try {
            const result = await handler(lease);
            record('ok');
            finish(span, { 'leasehold.outcome': 'ok' });
            return result;
          } catch (error) {
            const type = (error as { name?: string })?.name ?? 'Error';
            record(error instanceof LeaseLostError ? 'lease_lost' : 'error', type);
            finish(span, {}, error);
            throw error;
          }
        },
      );
    };
    return work.call(this, stage, process, workOptions);
  };
  wrapped.push('work');
  instrumentedTrackers.add(tracker);

  let removed = false;
  return function uninstrument() {
    // a second call must not unmark (or strip) a later instrument() of the same tracker
    if (removed) return;
    removed = true;
    for (const name of wrapped.splice(0)) delete target[name];
    recorded.stop();
    instrumentedTrackers.delete(tracker);
    names.splice(names.indexOf(name), 1);
  };
}
