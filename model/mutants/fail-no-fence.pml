/*
 * Mutant fail-no-fence:
 * fail checks the status but not the fence: a stale worker fails the new holder's attempt.
 * expect: stale_settle
 */
#define MUTANT_FAIL_NO_FENCE
#include "../leasehold.pml"
