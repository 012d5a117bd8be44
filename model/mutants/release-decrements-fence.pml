/*
 * Mutant release-decrements-fence:
 * release decrements the fence instead of the attempts.
 * expect: fence_monotone
 */
#define MUTANT_RELEASE_DECREMENTS_FENCE
#include "../leasehold.pml"
