/*
 * Mutant track-not-unique:
 * track inserts without a unique key: tracking a key twice makes a second row, so the item
 * has two statuses.
 * expect: one_status
 */
#define MUTANT_TRACK_NOT_UNIQUE
#include "../leasehold.pml"
