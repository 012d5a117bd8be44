/*
 * Mutant complete-no-fence:
 * complete checks the status but not the fence: a worker whose lease was reaped completes
 * the item under the worker that took it over.
 * expect: stale_settle
 */
#define MUTANT_COMPLETE_NO_FENCE
#include "../leasehold.pml"
