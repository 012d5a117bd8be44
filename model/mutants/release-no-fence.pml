/*
 * Mutant release-no-fence:
 * release checks the status but not the fence: a stale worker hands back an item someone
 * else holds.
 * expect: stale_settle
 */
#define MUTANT_RELEASE_NO_FENCE
#include "../leasehold.pml"
