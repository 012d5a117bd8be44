/*
 * Mutant reap-no-park:
 * reapStale runs only its retry update, not its park update: an expired lease on the last
 * attempt stays active forever.
 * expect: progress
 */
#define MUTANT_REAP_NO_PARK
#include "../leasehold.pml"
