import type { Collection, Document, WriteConcernSettings } from 'mongodb';

/** The key fields of the original model. */
export const LEGACY_KEY_FIELDS: string[];
/** Fields of the original model that leasehold's shape replaces. */
export const LEGACY_FIELDS: string[];
/** The index the original model declared (Mongoose's default name for it). */
export const LEGACY_INDEX: string;
/** The owner recorded for items a pre-leasehold worker held when it was stopped. */
export const LEGACY_OWNER: string;
/** The pipeline update from the original shape to leasehold's. */
export function legacyToLeasehold(keyFields?: string[]): Document[];
/** What a migration found and did. */
export interface MigrationResult {
  scanned: number;
  legacy: number;
  byStatus: Record<string, number>;
  duplicates: Array<{ key: unknown[]; _id: unknown; status: string; kept: unknown }>;
  removed: number;
  migrated: number;
  droppedIndexes: string[];
  /** Documents whose key lacks a field or holds `null` (reported by a dry run; a real run refuses them). */
  incompleteKeys: Array<{ _id: unknown; status: string; missing: string[]; migrated: boolean }>;
}
/** Migrates the original PartnerLogTracker documents of `collection` into leasehold's shape, in place. */
export function migratePartnerLogTrackers(
  collection: Collection<Document>,
  options?: {
    keyFields?: string[];
    batchSize?: number;
    dryRun?: boolean;
    duplicates?: 'fail' | 'keep-most-advanced';
    archive?: Collection<Document>;
    legacyIndexes?: string[];
    writeConcern?: WriteConcernSettings;
    log?: (line: string) => void;
  },
): Promise<MigrationResult>;
