/*
 * Mutant fence-is-attempts:
 * the attempt number is used as the fencing token: after an operator retry resets attempts,
 * a new claim hands out a fence that an old, still running holder already has.
 * expect: one_holder
 */
#define MUTANT_FENCE_IS_ATTEMPTS
#include "../leasehold.pml"
