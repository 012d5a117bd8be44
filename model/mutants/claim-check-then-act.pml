/*
 * Mutant claim-check-then-act:
 * claim reads an eligible item, then writes the claim (fence and attempts computed from the
 * read) in a second, unconditional update: two workers that read together both get the item
 * with the same fence.
 * expect: one_holder
 */
#define MUTANT_CLAIM_CHECK_THEN_ACT
#include "../leasehold.pml"
