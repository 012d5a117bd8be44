/*
 * Mutant retry-keeps-attempts:
 * operator retry does not reset attempts: the retried item is parked again by its very next
 * claim, without running.
 * expect: claimable
 */
#define MUTANT_RETRY_KEEPS_ATTEMPTS
#include "../leasehold.pml"
