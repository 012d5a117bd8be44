/*
 * Mutant reap-check-then-act:
 * the reaper's update does not re-check fence and expiry after its read: a lease renewed in
 * between is reaped anyway.
 * expect: live_lease_kept
 */
#define MUTANT_REAP_CHECK_THEN_ACT
#include "../leasehold.pml"
