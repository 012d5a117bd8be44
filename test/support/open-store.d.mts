import type { Store } from '../../src/index.js';
/** Opens a store of the built package for a child process of the tests. */
export function openStore(kind: string, target: string, table: string): Promise<{ store: Store; close(): Promise<void> }>;
