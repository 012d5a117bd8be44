/*
 * Mutant renew-no-fence:
 * renew checks the status but not the fence: a stale worker extends the lease of the worker
 * that took the item over.
 * expect: stale_settle
 */
#define MUTANT_RENEW_NO_FENCE
#include "../leasehold.pml"
