import type { z } from 'zod';
import type { Backoff, Store } from '../../src/index.js';

/** The options of a two-stage tracker keyed by `n` whose second stage may complete back into `new`. */
export function pipelineDefinition(
  store: Store | undefined,
  options: { ttlMs: number; maxAttempts?: number; backoff?: Backoff },
): {
  store: Store;
  statuses: readonly ['new', 'working', 'worked', 'checking', 'checked', 'failed'];
  initial: 'new';
  key: z.ZodObject<{ n: z.ZodNumber }>;
  stages: {
    work: { from: 'new'; active: 'working'; done: 'worked'; failed: 'failed' };
    check: { from: readonly ['worked']; active: 'checking'; done: readonly ['checked', 'new']; failed: 'failed' };
  };
  lease: { ttlMs: number };
  retry: { maxAttempts: number; backoff?: Backoff };
};

/** A seeded random generator returning numbers in [0, 1). */
export function random(seed: number): () => number;

/** Runs one random client on a tracker built from {@link pipelineDefinition}. */
export function runClient(
  tracker: object,
  options: { owner: string; seed: number; keys: number; driftEvery: number; operations: number; ttlMs: number; stale?: boolean },
): Promise<{ held: number }>;
