/*
 * Mutant release-keeps-attempts:
 * release does not give the attempt back: an item released on its last attempt is parked by
 * its next claim.
 * expect: claimable
 */
#define MUTANT_RELEASE_KEEPS_ATTEMPTS
#include "../leasehold.pml"
