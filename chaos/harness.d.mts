/** Result of one crash-chaos run on one store. */
export interface ChaosResult {
  store: string;
  items: number;
  lost: number;
  duplicates: number;
  wrongFence: number;
  overAttempts: number;
  unrecorded: number;
  crashes: number;
  freezes: number;
  reaped: number;
  leaseLost: number;
  overlaps: number;
  unacceptedFinishes: number;
  storeErrors: number;
  otherErrors: string[];
  /** Whether the history of every tracker call of the run is linearizable (item model, per key). */
  linearizable: boolean;
  /** Size of that history: calls, calls without a return (killed processes), keys, and the check's time. */
  history: { operations: number; pending: number; keys: number; checkMs: number };
  seconds: number;
  ok: boolean;
}

export function chaosRun(options: {
  kind: 'sqlite' | 'postgres' | 'mongodb' | 'redis';
  target?: string;
  items: number;
  workers: number;
  killEveryMs?: [number, number];
  skewsMs?: number[];
  exclusive?: boolean;
  /** Lease ttl of every tracker in the run. */
  ttlMs?: number;
  freezeEveryMs?: number;
  timeoutMs: number;
  log?: (line: string) => void;
}): Promise<ChaosResult>;

export function chaosLine(results: ChaosResult[]): string;
