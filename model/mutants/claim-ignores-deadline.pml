/*
 * Mutant claim-ignores-deadline:
 * claim does not check the deadline: an item is claimed again during its backoff.
 * expect: backoff
 */
#define MUTANT_CLAIM_IGNORES_DEADLINE
#include "../leasehold.pml"
