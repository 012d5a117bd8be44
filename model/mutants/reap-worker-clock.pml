/*
 * Mutant reap-worker-clock:
 * the reaper judges expiry by its own clock, which runs ahead: a live lease is reaped from
 * a healthy worker.
 * expect: live_lease_kept
 */
#define MUTANT_REAP_WORKER_CLOCK
#include "../leasehold.pml"
