import { describe, expect, it } from 'vitest';
import { retryRefusal } from '../src/retry-refusal.js';

// `fetch` and `process` share `failed`; `archive` has `archive_failed` to itself
const def = {
  stages: [
    { name: 'fetch', failed: 'failed' },
    { name: 'process', failed: 'failed' },
    { name: 'archive', failed: 'archive_failed' },
  ],
};

describe('retryRefusal: why a retry of one item changed nothing', () => {
  it('no item', () => {
    expect(retryRefusal(def, null, undefined)).toEqual({ why: 'missing' });
  });

  it('an item in a status no stage fails into is not parked', () => {
    expect(retryRefusal(def, { status: 'queued', stage: 'fetch' }, undefined)).toEqual({ why: 'not-parked', status: 'queued', failedStatuses: ['failed', 'archive_failed'] });
  });

  it('an item under a declared stage in a failed status it was not parked in waits or finished there (the message named the status it was in as the one retry needs)', () => {
    expect(retryRefusal(def, { status: 'failed', stage: 'archive' }, undefined)).toEqual({ why: 'not-parked-here', status: 'failed', stage: 'archive' });
    expect(retryRefusal(def, { status: 'failed', stage: 'archive' }, 'archive')).toEqual({ why: 'not-parked-here', status: 'failed', stage: 'archive' });
  });

  it('an item parked by another stage than the one named', () => {
    expect(retryRefusal(def, { status: 'failed', stage: 'fetch' }, 'process')).toEqual({ why: 'other-stage', status: 'failed', parkedBy: 'fetch' });
  });

  it('an item with no stage recorded in a shared failed status needs a stage named, and one that fails into it', () => {
    expect(retryRefusal(def, { status: 'failed', stage: null }, undefined)).toEqual({ why: 'pick-stage', status: 'failed', recorded: null, owners: ['fetch', 'process'] });
    // named, but a stage that parks elsewhere: the same answer, not "not parked"
    expect(retryRefusal(def, { status: 'failed', stage: null }, 'archive')).toEqual({ why: 'pick-stage', status: 'failed', recorded: null, owners: ['fetch', 'process'] });
    expect(retryRefusal(def, { status: 'archive_failed', stage: 'gone' }, 'fetch')).toEqual({ why: 'pick-stage', status: 'archive_failed', recorded: 'gone', owners: ['archive'] });
  });

  it('an item under a stage no longer declared, where the one owner of its status was named, is unclear', () => {
    expect(retryRefusal(def, { status: 'archive_failed', stage: 'gone' }, 'archive')).toEqual({ why: 'unclear', status: 'archive_failed', recorded: 'gone' });
  });
});
