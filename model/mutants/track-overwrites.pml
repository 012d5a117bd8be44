/*
 * Mutant track-overwrites:
 * track is an upsert that sets the initial status on an existing item (the origin-story
 * bug): a poller that sees a finished log again sends it round once more.
 * expect: done_final
 */
#define MUTANT_TRACK_OVERWRITES
#include "../leasehold.pml"
