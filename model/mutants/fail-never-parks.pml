/*
 * Mutant fail-never-parks:
 * fail sends the item back even when its attempts are used up.
 * expect: claimable
 */
#define MUTANT_FAIL_NEVER_PARKS
#include "../leasehold.pml"
