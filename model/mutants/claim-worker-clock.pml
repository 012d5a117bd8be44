/*
 * Mutant claim-worker-clock:
 * claim judges the deadline by the worker's own clock, which runs ahead: an item is claimed
 * before its backoff ended.
 * expect: backoff
 */
#define MUTANT_CLAIM_WORKER_CLOCK
#include "../leasehold.pml"
