/*
 * leasehold's lease protocol, as a SPIN model.
 *
 * The store is the single authority: it holds every item's status, fence, attempts and
 * deadline, and its clock is the only clock any guard reads. Every transition of the
 * protocol is one conditional update in the store, modelled as one `atomic` step that
 * tests its guard and applies its change with nothing in between. Workers, the reaper, the
 * poller and the operator only ever act through those steps.
 *
 * docs/protocol.md explains the model, its bounds and properties in plain words, and maps
 * every labelled transition below to the function that builds it in src/. A change to a
 * transition in one place must show up in the other.
 *
 * Mutants: `#ifdef MUTANT_...` switches below replace one guard or change by a plausible
 * mistake. model/mutants/<name>.pml defines one switch and includes this file;
 * `npm run model-check` expects SPIN to find a counterexample for each.
 *
 * Time. The store's clock is abstracted without losing anything the guards can see: an
 * item keeps `left`, the time from the store's now to its deadline, clipped at 0 (0 means
 * "deadline <= now": claimable while waiting, expired while held). The Clock process
 * advances the store's now by one tick by lowering every positive `left`. Time is
 * unbounded; the state space stays finite.
 */

/* ---- bounds (each can be overridden with -D; docs/protocol.md states them) ---- */
#ifndef NITEMS
#define NITEMS 1        /* work items (keys) */
#endif
#ifndef NWORKERS
#define NWORKERS 3      /* worker processes */
#endif
#ifndef MAXATT
#define MAXATT 2        /* retry.maxAttempts as deployed (an operator redeploy may lower it by 1) */
#endif
#ifndef TTL
#define TTL 1           /* lease ttl, in clock ticks */
#endif
#ifndef BACKOFF
#define BACKOFF 1       /* backoff after a failed attempt, in ticks */
#endif
#ifndef RENEWS
#define RENEWS 1        /* renews in a whole run: handlers finish eventually */
#endif
#ifndef RELEASES
#define RELEASES 1      /* releases in a whole run (a release gives the attempt back) */
#endif
#ifndef OPS
#define OPS 1           /* operator verbs (cancel, retry, reschedule, redeploy) in a whole run */
#endif
#ifndef SKEW
#define SKEW 1          /* how far a wrong clock runs ahead (used only by the *_WORKER_CLOCK mutants) */
#endif

#define NONE 255        /* a worker holding no lease */

/* One stage: from = PENDING, active = ACTIVE, done = DONE, failed = FAILED. ABSENT: not tracked. */
mtype = { ABSENT, PENDING, ACTIVE, DONE, FAILED };

/* ---- the store: the only shared state ---- */
mtype st[NITEMS] = ABSENT; /* status */
byte fence[NITEMS];     /* fencing token */
byte att[NITEMS];       /* attempts (claims so far in the stage) */
byte left[NITEMS];      /* deadline - store now, clipped at 0 */
byte rows[NITEMS];      /* stored rows with this key (the unique key index keeps it at 1) */

/* ---- what each worker holds (its own memory, not the store's) ---- */
byte lk[NWORKERS] = NONE; /* the key of its lease, or NONE */
byte lf[NWORKERS];      /* the lease's fence */
bool exh[NWORKERS];     /* claimed with attempts beyond maxatt: the tracker parks it next */

/* ---- the deployment ---- */
byte maxatt = MAXATT;   /* retry.maxAttempts in force */

/* ---- budgets (what keeps runs finite; see the bounds above) ---- */
byte renews = RENEWS;
byte releases = RELEASES;
byte ops = OPS;

/*
 * ---- observers (ghost flags) ----
 * They watch the store's state when a transition takes effect; no guard reads them, and
 * the mutant switches never touch them. Each latches once its bad thing happened.
 */
bool staleEffect = false;   /* a renew/complete/fail/release took effect under a stale fence */
bool earlyClaim = false;    /* a claim took effect before the item's deadline (store clock) */
bool liveReaped = false;    /* the reaper took away a lease that was live by the store's clock */
bool notClaimable = false;  /* a released/reaped/retried/failed item did not come back claimable */
bool fenceDown = false;     /* a write lowered a fence */

#define HOLDS(w, i) (lk[w] == i && lf[w] == fence[i] && st[i] == ACTIVE)

inline observeSettle(w, k) {
  if
  :: !(st[k] == ACTIVE && fence[k] == lf[w]) -> staleEffect = true
  :: else -> skip
  fi
}

/* Back in from with an attempt left, so the next claim hands it to a worker. */
inline observeClaimable(k) {
  if
  :: !(st[k] == PENDING && att[k] < maxatt) -> notClaimable = true
  :: else -> skip
  fi
}

/* Every write of a fence goes through here (scripts/model-check.mjs checks that none
 * bypasses it), so that the observer sees each old and new value. */
inline setFence(k, v) {
  if
  :: v < fence[k] -> fenceDown = true           /* observer */
  :: else -> skip
  fi;
  fence[k] = v
}

inline dropLease(w) {
  lk[w] = NONE; lf[w] = 0; exh[w] = false
}

/* ================= transitions (one conditional update each) ================= */

/* track: insert-if-absent in the initial status; never changes an existing item. */
inline track(k) {
  atomic {
    if
    :: rows[k] == 0 -> T_track: rows[k] = 1; st[k] = PENDING; att[k] = 0; left[k] = 0
#if defined(MUTANT_TRACK_NOT_UNIQUE)
    :: else -> rows[k]++                        /* no unique key: a second row for the key */
#elif defined(MUTANT_TRACK_OVERWRITES)
    :: else -> st[k] = PENDING; left[k] = 0     /* an upsert that resets the status */
#else
    :: else -> skip
#endif
    fi
  }
}

/* claim guard: status in from AND deadline <= store now. */
#if defined(MUTANT_CLAIM_IGNORES_DEADLINE)
#define CLAIM_GUARD(k) (st[k] == PENDING)
#elif defined(MUTANT_CLAIM_WORKER_CLOCK)
#define CLAIM_GUARD(k) (st[k] == PENDING && left[k] <= SKEW)   /* a worker clock SKEW ahead */
#else
#define CLAIM_GUARD(k) (st[k] == PENDING && left[k] == 0)
#endif
#if NITEMS == 1
#define ANY_CLAIMABLE (CLAIM_GUARD(0))
#else
#define ANY_CLAIMABLE (CLAIM_GUARD(0) || CLAIM_GUARD(1))
#endif

#if defined(MUTANT_FENCE_IS_ATTEMPTS)
#define CLAIM_FENCE(k) setFence(k, att[k])
#else
#define CLAIM_FENCE(k) setFence(k, fence[k] + 1)
#endif

/* The change of a claim: active, owner, fence + 1, attempts + 1, deadline = now + ttl.
 * Attempts are not in the guard; a claim that takes the item past maxatt is parked next. */
inline takeLease(w, k) {
  if
  :: left[k] > 0 -> earlyClaim = true          /* observer */
  :: else -> skip
  fi;
  st[k] = ACTIVE; att[k]++; CLAIM_FENCE(k); left[k] = TTL;
  lk[w] = k; lf[w] = fence[k]; exh[w] = (att[k] > maxatt)
}

/*
 * claim (by key, or claim-next): one conditional update. The store picks the oldest eligible
 * item or the given key; the model lets the worker take any eligible item, which covers both.
 * A claim that finds nothing, or loses the race, changes nothing (it returns null), so the
 * model leaves it out: the step is enabled only when it takes effect. (Kept in, a worker could
 * spin on null claims forever, which no fairness assumption can rule out.)
 */
#if defined(MUTANT_CLAIM_CHECK_THEN_ACT)
/* A read, then a separate unconditional write of values computed from the read. */
inline claim(w) {
  atomic {
    lk[w] == NONE && ANY_CLAIMABLE ->
    if
    :: CLAIM_GUARD(0) -> k = 0
#if NITEMS > 1
    :: CLAIM_GUARD(1) -> k = 1
#endif
    fi;
    seenF = fence[k] + 1; seenA = att[k] + 1
  }
  atomic {
    st[k] = ACTIVE; setFence(k, seenF); att[k] = seenA; left[k] = TTL;
    lk[w] = k; lf[w] = seenF; exh[w] = (seenA > maxatt);
    seenF = 0; seenA = 0; k = 0
  }
}
#else
inline claim(w) {
  atomic {
    lk[w] == NONE && ANY_CLAIMABLE ->
    if
    :: CLAIM_GUARD(0) -> T_claim: takeLease(w, 0)
#if NITEMS > 1
    :: CLAIM_GUARD(1) -> takeLease(w, 1)
#endif
    fi
  }
}
#endif

/* The tracker parks a claim that went past maxatt, with a guarded update. In the model (as in
 * the code) only a lowered retry.maxAttempts gets an item there, or a bug (see the mutants). */
inline parkExhausted(w) {
  atomic {
    k = lk[w];
    if
    :: st[k] == ACTIVE && fence[k] == lf[w] -> T_park_exhausted: st[k] = FAILED; left[k] = 0
    :: else -> skip
    fi;
    dropLease(w); k = 0
  }
}

/* The settle guard (rule 3): status == active AND fence == lease.fence. */
#define SETTLE_GUARD(w, k) (st[k] == ACTIVE && fence[k] == lf[w])
#ifdef MUTANT_RENEW_NO_FENCE
#define RENEW_GUARD(w, k) (st[k] == ACTIVE)
#else
#define RENEW_GUARD(w, k) SETTLE_GUARD(w, k)
#endif
#ifdef MUTANT_COMPLETE_NO_FENCE
#define COMPLETE_GUARD(w, k) (st[k] == ACTIVE)
#else
#define COMPLETE_GUARD(w, k) SETTLE_GUARD(w, k)
#endif
#ifdef MUTANT_FAIL_NO_FENCE
#define FAIL_GUARD(w, k) (st[k] == ACTIVE)
#else
#define FAIL_GUARD(w, k) SETTLE_GUARD(w, k)
#endif
#ifdef MUTANT_RELEASE_NO_FENCE
#define RELEASE_GUARD(w, k) (st[k] == ACTIVE)
#else
#define RELEASE_GUARD(w, k) SETTLE_GUARD(w, k)
#endif

/* renew: deadline = now + ttl. The guard ignores the deadline: an expired lease that was
 * not reaped yet may still renew, as no one else can claim an active item. A refused renew
 * (LeaseLostError) makes the worker drop the lease (its signal is aborted). */
inline renew(w) {
  atomic {
    k = lk[w];
    if
    :: RENEW_GUARD(w, k) -> observeSettle(w, k); T_renew: left[k] = TTL
    :: else -> dropLease(w)
    fi;
    renews--; k = 0
  }
}

/* complete: -> done, attempts reset. */
inline complete(w) {
  atomic {
    k = lk[w];
    if
    :: COMPLETE_GUARD(w, k) -> observeSettle(w, k); T_complete: st[k] = DONE; att[k] = 0; left[k] = 0
    :: else -> skip
    fi;
    dropLease(w); k = 0
  }
}

/* fail: back to from after backoff while attempts remain, else failed. The failed status is
 * also open to any attempt: a NonRetryableError or { retry: false }. */
inline fail(w) {
  atomic {
    k = lk[w];
    if
    :: FAIL_GUARD(w, k) ->
       observeSettle(w, k);
       if
#ifdef MUTANT_FAIL_NEVER_PARKS
       :: true ->
#else
       :: att[k] < maxatt ->
#endif
          T_fail_retry: st[k] = PENDING; left[k] = BACKOFF; observeClaimable(k)
       :: true -> T_fail_park: st[k] = FAILED; left[k] = 0
       fi
    :: else -> skip
    fi;
    dropLease(w); k = 0
  }
}

/* release: back to from, attempts - 1 (never below 0), claimable now. The attempt is given
 * back, so the item is exactly as claimable as before its claim. */
inline release(w) {
  atomic {
    k = lk[w];
    if
    :: RELEASE_GUARD(w, k) ->
       observeSettle(w, k);
       a0 = (att[k] > 0 -> att[k] - 1 : 0);     /* observer: the attempts it must come back with */
T_release:
       st[k] = PENDING; left[k] = 0;
#if defined(MUTANT_RELEASE_KEEPS_ATTEMPTS)
       skip;
#elif defined(MUTANT_RELEASE_DECREMENTS_FENCE)
       setFence(k, fence[k] - 1);                 /* the decrement on the wrong field */
#else
       if :: att[k] > 0 -> att[k]-- :: else -> skip fi;
#endif
       if
       :: !(st[k] == PENDING && att[k] == a0) -> notClaimable = true
       :: else -> skip
       fi;
       a0 = 0
    :: else -> skip
    fi;
    releases--;
    dropLease(w); k = 0
  }
}

/* reapStale, per item: read an expired lease (store clock), then one guarded update that
 * re-checks status, fence and expiry, and fails the attempt ("lease expired") with fence + 1.
 * Reading and updating in one statement is one of the schedules of this two-step form. */
#if defined(MUTANT_REAP_WORKER_CLOCK)
#define EXPIRED(i) (left[i] <= SKEW)      /* a reaper clock SKEW ahead */
#else
#define EXPIRED(i) (left[i] == 0)
#endif
#if defined(MUTANT_REAP_CHECK_THEN_ACT)
#define REAP_GUARD(i) (st[i] == ACTIVE)
#else
#define REAP_GUARD(i) (st[i] == ACTIVE && fence[i] == seenF && EXPIRED(i))
#endif
#if defined(MUTANT_REAP_NO_FENCE)
#define REAP_FENCE(i) skip
#else
#define REAP_FENCE(i) setFence(i, fence[i] + 1)
#endif

inline reapRead(i) {
  atomic {
    if
    :: st[i] == ACTIVE && EXPIRED(i) -> T_reap_read: seen = true; seenF = fence[i]; seenA = att[i]
    :: else -> seen = false
    fi
  }
}

inline reapUpdate(i) {
  atomic {
    if
    :: seen && REAP_GUARD(i) ->
       if
       :: left[i] > 0 -> liveReaped = true       /* observer */
       :: else -> skip
       fi;
       if
       :: seenA < maxatt -> T_reap_retry: st[i] = PENDING; left[i] = BACKOFF; REAP_FENCE(i); observeClaimable(i)
#ifdef MUTANT_REAP_NO_PARK
       :: else -> skip                            /* only the retry update, no park */
#else
       :: else -> T_reap_park: st[i] = FAILED; left[i] = 0; REAP_FENCE(i)
#endif
       fi
    :: else -> skip
    fi;
    seen = false; seenF = 0; seenA = 0
  }
}

/* cancel (operator): any item not in a terminal status -> failed, fence + 1. */
#ifdef MUTANT_CANCEL_TERMINAL
#define CANCEL_GUARD(k) (st[k] != ABSENT)
#else
#define CANCEL_GUARD(k) (st[k] == PENDING || st[k] == ACTIVE)
#endif
#ifdef MUTANT_CANCEL_NO_FENCE
#define CANCEL_FENCE(k) skip
#else
#define CANCEL_FENCE(k) setFence(k, fence[k] + 1)
#endif

inline cancel(k) {
  atomic {
    if
    :: CANCEL_GUARD(k) -> T_cancel: st[k] = FAILED; left[k] = 0; CANCEL_FENCE(k)
    :: else -> skip
    fi;
    ops--; k = 0
  }
}

/* retry (operator): failed -> the stage's first from, attempts 0, deadline = now. */
inline retry(k) {
  atomic {
    if
    :: st[k] == FAILED ->
T_retry:
       st[k] = PENDING; left[k] = 0;
#ifndef MUTANT_RETRY_KEEPS_ATTEMPTS
       att[k] = 0;
#endif
       observeClaimable(k)
    :: else -> skip
    fi;
    ops--; k = 0
  }
}

/* reschedule (operator): an item waiting in from -> not claimable before a given time. */
inline reschedule(k) {
  atomic {
    if
    :: st[k] == PENDING -> T_reschedule: d = 0; select(d : 0 .. TTL); left[k] = d; d = 0
    :: else -> skip
    fi;
    ops--; k = 0
  }
}

/* redeploy (operator): retry.maxAttempts lowered by one, fleet-wide. Items that already used
 * more attempts are parked by their next claim (T_park_exhausted). */
inline redeploy() {
  atomic {
    if
    :: maxatt > 1 -> T_redeploy: maxatt--
    :: else -> skip
    fi;
    ops--; k = 0
  }
}

/* ================= processes ================= */

/* The store's clock: one tick lowers every positive `left`. A worker that stalls (a GC
 * pause) is simply not scheduled while the clock ticks on. */
active proctype Clock() {
  byte i;
  do
  :: d_step {
       i = 0;
       do
       :: i < NITEMS -> if :: left[i] > 0 -> left[i]-- :: else -> skip fi; i++
       :: else -> i = 0; break
       od
     }
  od
}

/* A poller tracks every key, then sees every key again later (the origin-story duplicate). */
active proctype Poller() {
  byte k = 0;
  do
  :: k < 2 * NITEMS -> track(k % NITEMS); k++
  :: else -> break
  od
}

/*
 * A worker loop. Without a lease it claims. With one it may renew, complete, fail, release
 * (a graceful stop), or crash: it forgets its lease, leaving the item active in the store, and
 * comes back as a fresh loop. It may stall between any two steps for any number of ticks.
 * A worker's own clock appears nowhere: every choice it makes by its clock (when to renew,
 * when to give up and fail) is a free choice here, so every reading of it, however wrong,
 * is covered. The *_WORKER_CLOCK mutants show what happens if a guard read one instead.
 */
proctype Worker(byte w) {
  byte k, a0;
#ifdef MUTANT_CLAIM_CHECK_THEN_ACT
  byte seenF, seenA;
#endif
  do
  :: claim(w)
  :: atomic { lk[w] != NONE && exh[w] -> parkExhausted(w) }
  :: atomic { lk[w] != NONE && !exh[w] && renews > 0 -> renew(w) }
  :: atomic { lk[w] != NONE && !exh[w] -> complete(w) }
  :: atomic { lk[w] != NONE && !exh[w] -> fail(w) }
  :: atomic { lk[w] != NONE && !exh[w] && releases > 0 -> release(w) }
  :: atomic { lk[w] != NONE -> dropLease(w) }          /* crash: the lease is forgotten */
  od
}

/* The reaper sweeps every item again and again (workers reap by default). */
active proctype Reaper() {
  byte i = 0, seenF, seenA;
  bool seen;
  do
  :: i < NITEMS -> reapRead(i); reapUpdate(i); i++
  :: else -> i = 0
  od
}

/* The operator: a bounded number of cancel, retry, reschedule and redeploy calls, then no more. */
active proctype Operator() {
  byte k, d;
  do
  :: atomic {
       ops > 0 -> select(k : 0 .. NITEMS - 1);
       if
       :: true -> cancel(k)
       :: true -> retry(k)
       :: true -> reschedule(k)
       :: true -> redeploy()
       fi
     }
  :: break
  od
}

init {
  byte w = 0;
  atomic {
    do
    :: w < NWORKERS -> run Worker(w); w++
    :: else -> break
    od
  }
}

/* ================= properties =================
 * Each is an `ltl` block on one line (scripts/model-check.mjs reads them); pan checks one per
 * run (`-N name`). The script also checks all safety properties at once, as their conjunction.
 * Built with -DCHECK_ONE -DCHECK_<name>, the model holds only that one (for mutants: a smaller
 * build). A liveness property says "weak fairness" in a comment on its line.
 */

#if NWORKERS == 2
#define TWO_HOLDERS(i) (HOLDS(0, i) && HOLDS(1, i))
#define ZOMBIE(i) ((lk[0] == i && lf[0] == fence[i] && st[i] != ACTIVE) || (lk[1] == i && lf[1] == fence[i] && st[i] != ACTIVE))
#elif NWORKERS == 3
#define TWO_HOLDERS(i) ((HOLDS(0, i) && HOLDS(1, i)) || (HOLDS(0, i) && HOLDS(2, i)) || (HOLDS(1, i) && HOLDS(2, i)))
#define ZOMBIE(i) ((lk[0] == i && lf[0] == fence[i] && st[i] != ACTIVE) || (lk[1] == i && lf[1] == fence[i] && st[i] != ACTIVE) || (lk[2] == i && lf[2] == fence[i] && st[i] != ACTIVE))
#else
#error "NWORKERS must be 2 or 3"
#endif

#if NITEMS == 1
#define ALL_ITEMS(P) (P(0))
#elif NITEMS == 2
#define ALL_ITEMS(P) (P(0) && P(1))
#else
#error "NITEMS must be 1 or 2"
#endif

#define NO_TWO_HOLDERS(i) (!TWO_HOLDERS(i))
#define NO_ZOMBIE(i) (!ZOMBIE(i))
#define ONE_STATUS(i) ((rows[i] == 0 && st[i] == ABSENT) || (rows[i] == 1 && (st[i] == PENDING || st[i] == ACTIVE || st[i] == DONE || st[i] == FAILED)))
#define FINISHED(i) (st[i] == DONE || st[i] == FAILED)
#define DONE_FINAL(i) (st[i] == DONE -> [] (st[i] == DONE))
#define PROGRESS(i) (st[i] != ABSENT -> <> FINISHED(i))

/* Never two live holders: at most one worker has a lease whose fence is the item's, on an active item. */
#if !defined(CHECK_ONE) || defined(CHECK_one_holder)
ltl one_holder { [] ALL_ITEMS(NO_TWO_HOLDERS) }
#endif

/* A renew, complete, fail or release under a stale fence never takes effect. */
#if !defined(CHECK_ONE) || defined(CHECK_stale_settle)
ltl stale_settle { [] !staleEffect }
#endif

/* A lease that was taken away (reaped, cancelled) is stale at once: a lease whose fence is the
 * item's current fence is always on an active item. */
#if !defined(CHECK_ONE) || defined(CHECK_fenced_off)
ltl fenced_off { [] ALL_ITEMS(NO_ZOMBIE) }
#endif

/* The fence never decreases: no write lowers it. */
#if !defined(CHECK_ONE) || defined(CHECK_fence_monotone)
ltl fence_monotone { [] !fenceDown }
#endif

/* Every item is in exactly one status: untracked, or one row in one declared status. */
#if !defined(CHECK_ONE) || defined(CHECK_one_status)
ltl one_status { [] ALL_ITEMS(ONE_STATUS) }
#endif

/* A completed item stays done: nothing is done twice. */
#if !defined(CHECK_ONE) || defined(CHECK_done_final)
ltl done_final { [] ALL_ITEMS(DONE_FINAL) }
#endif

/* A released, reaped, retried or failed-with-retries item is claimable again: back in from, attempts left. */
#if !defined(CHECK_ONE) || defined(CHECK_claimable)
ltl claimable { [] !notClaimable }
#endif

/* Backoff and schedules hold: no claim before the item's deadline by the store's clock. */
#if !defined(CHECK_ONE) || defined(CHECK_backoff)
ltl backoff { [] !earlyClaim }
#endif

/* A lease that is live by the store's clock is never reaped, whatever any other clock says. */
#if !defined(CHECK_ONE) || defined(CHECK_live_lease_kept)
ltl live_lease_kept { [] !liveReaped }
#endif

/* Liveness (run with weak fairness): every tracked item eventually reaches done or failed. */
#if !defined(CHECK_ONE) || defined(CHECK_progress)
ltl progress { [] ALL_ITEMS(PROGRESS) }  /* liveness: checked under weak fairness (pan -a -f) */
#endif
