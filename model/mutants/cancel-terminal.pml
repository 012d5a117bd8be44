/*
 * Mutant cancel-terminal:
 * cancel applies to any status, done included: a completed item is turned into a failed
 * one.
 * expect: done_final
 */
#define MUTANT_CANCEL_TERMINAL
#include "../leasehold.pml"
