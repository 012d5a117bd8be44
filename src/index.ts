/**
 * leasehold: many workers share one set of work items; exactly one holds each item at a
 * time, stale workers are fenced off, and nothing is lost when a worker dies.
 *
 * @module leasehold
 */
export { Tracker, TrackerOperations, type PurgeOptions, type PurgeResult, type TrackerDefinition, type ExtraResultFields, type HandlerResult, type ItemOf, type KeyOf, type OnlyToAndData, type LeaseOf, type ScheduleOptions, type StageOf, type TrackArgs, type TrackOptions } from './tracker.js';
export type { BatchFailure, BatchResult, BatchSuccess, DataPatch, ReapResult, StageStats, TrackerStats, TrackResult } from './results.js';
export { Lease } from './lease.js';
export { Worker, defaultOwner, type Handler, type Retention, type WorkOptions } from './worker.js';
export { exponentialBackoff, type Backoff, type ExponentialBackoffOptions } from './backoff.js';
export {
  ConfigError,
  HandlerTimeoutError,
  LeaseholdError,
  LeaseLostError,
  NonRetryableError,
  StoreError,
  ValidationError,
  type HeldState,
  type StoreFailure,
  type ValidationIssue,
} from './errors.js';
export type { Item } from './codec.js';
export type {
  DoneStatus,
  KeySchema,
  LeaseOptions,
  RetryOptions,
  StageDefinition,
  StageView,
  StageMap,
  TrackerOptions,
} from './definition.js';
export type {
  ClaimedEvent,
  CompletedEvent,
  ErrorEvent,
  FailedEvent,
  LeaseEventBase,
  LeaseLostEvent,
  Listener,
  Logger,
  ReapedEvent,
  ReleasedEvent,
  RenewedEvent,
  TrackerEvents,
} from './events.js';
export { guardCondition } from './store.js';
export type {
  Change,
  Condition,
  AbsoluteDelay,
  DeadlineBefore,
  Delay,
  RelativeDelay,
  FindOptions,
  GuardedUpdate,
  ItemState,
  Returning,
  StatusCount,
  StoreChange,
  InsertResult,
  LeaseGuard,
  KeyField,
  NewItem,
  KeyFieldType,
  KeyScalar,
  KeyValues,
  Store,
  StoreCapabilities,
  StoreSchema,
  StoredItem,
  StoreStats,
  UpdateOptions,
  UpdateEachOptions,
  ItemOutcome,
  SettleOutcome,
} from './store.js';
