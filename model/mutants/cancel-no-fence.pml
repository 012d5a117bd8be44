/*
 * Mutant cancel-no-fence:
 * cancel does not advance the fence: the cancelled holder's fence stays current on a failed
 * item.
 * expect: fenced_off
 */
#define MUTANT_CANCEL_NO_FENCE
#include "../leasehold.pml"
