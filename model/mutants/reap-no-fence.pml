/*
 * Mutant reap-no-fence:
 * reapStale does not advance the fence: the reaped worker's fence stays current while the
 * item waits for its next claim (a downstream write fenced with it would still be
 * accepted).
 * expect: fenced_off
 */
#define MUTANT_REAP_NO_FENCE
#include "../leasehold.pml"
