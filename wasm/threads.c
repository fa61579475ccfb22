// The threads build's pool (scripts/build-wasm.mjs builds wasm/*.c twice: arpix.wasm with one
// thread, arpix-threads.wasm with -DARPIX_THREADS on a shared, imported memory). Helper threads —
// Web Workers or worker_threads, each with its own instance of the module on the same memory and its
// own stack — call thread_loop and wait there; a kernel's parallel_for publishes a loop in the
// control block below, wakes them, runs items itself and waits until every helper has checked in.
// Items are taken from a shared counter, so any thread may run any item; each writes its own outputs.
// In the single-thread build parallel_for is a plain loop.

#include "arpix.h"

/** Multiply-adds below which a loop runs on the calling thread (waking a helper costs microseconds). */
#define MIN_WORK 65536.0

/** Multiply-adds a thread takes at once at least (the items of a loop are taken in groups of as many as that needs). */
#define GRAIN_WORK 16384.0

#ifdef ARPIX_THREADS

/** The most threads a pool has (the calling thread and its helpers). */
#define MAX_THREADS 64

/** Spins on the control block before sleeping (a helper, or the caller waiting for helpers). */
#define SPINS 20000

static struct {
  int32_t helpers;     // threads in thread_loop, set by threads_start
  int32_t use;         // threads a loop may use, helpers + 1 at most (threads_set)
  int32_t generation;  // bumped per loop: the helpers' wake-up word
  int32_t pending;     // helpers yet to check in for the current loop
  int32_t active;      // a loop is running: loops nested in its items run inline
  int32_t run;         // workers of the current loop
  int32_t items;
  int32_t next;        // the next item to take
  int32_t grain;       // items taken at once (enough work to outweigh taking them)
  par_body body;
  void *ctx;
  int32_t ran[MAX_THREADS];  // items each worker has run (each writes its own)
} pool = { .use = 1, .run = 1, .grain = 1 };

static inline int32_t load(int32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }

static void take_items(int worker) {
  int items = pool.items, grain = pool.grain;
  for (;;) {
    int i = __atomic_fetch_add(&pool.next, grain, __ATOMIC_SEQ_CST);
    if (i >= items) return;
    int end = items - i < grain ? items : i + grain;
    pool.ran[worker] += end - i;
    for (; i < end; i++) pool.body(pool.ctx, i, worker);
  }
}

/** Tells the pool that `helpers` threads are in (or about to enter) thread_loop; no loop may be running. */
EXPORT(threads_start) void threads_start(int helpers) {
  pool.helpers = helpers < MAX_THREADS - 1 ? helpers : MAX_THREADS - 1;
  pool.use = helpers + 1;
}

/** Threads the next loops may use, from 1 to the pool's (clamped); returns what it set. */
EXPORT(threads_set) int threads_set(int use) {
  pool.use = use < 1 ? 1 : use > pool.helpers + 1 ? pool.helpers + 1 : use;
  return pool.use;
}

EXPORT(arpix_workers) int arpix_workers(void) { return pool.use; }

/** Items worker `worker` has run in parallel loops so far (the tests' evidence that helpers work). */
EXPORT(threads_ran) int threads_ran(int worker) { return worker >= 0 && worker < MAX_THREADS ? pool.ran[worker] : 0; }

/** A helper's life: wait for a loop, run its items (when it is one of the loop's workers), check in. */
EXPORT(thread_loop) void thread_loop(int id) {
  int32_t seen = 0;  // loops start after threads_start, which follows every helper's start
  for (;;) {
    int32_t g;
    int spins = 0;
    while ((g = load(&pool.generation)) == seen) {
      if (++spins < SPINS) continue;
      // A bounded wait: a helper whose worker is being ended must come back to a loop edge,
      // where the engine can stop it (a browser cannot end a thread blocked in an endless wait).
      __builtin_wasm_memory_atomic_wait32(&pool.generation, seen, 50000000);
    }
    seen = g;
    if (id < load(&pool.run)) take_items(id);
    if (__atomic_fetch_sub(&pool.pending, 1, __ATOMIC_SEQ_CST) == 1) __builtin_wasm_memory_atomic_notify(&pool.pending, 1);
  }
}

void parallel_for(int items, double work, par_body body, void *ctx) {
  int use = pool.use;
  if (use <= 1 || items <= 1 || load(&pool.active) || work * items < MIN_WORK) {
    for (int i = 0; i < items; i++) body(ctx, i, 0);
    return;
  }
  pool.active = 1;
  pool.body = body;
  pool.ctx = ctx;
  pool.items = items;
  pool.run = use;
  pool.grain = work >= GRAIN_WORK ? 1 : (int)(GRAIN_WORK / work) + 1;
  __atomic_store_n(&pool.next, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&pool.pending, pool.helpers, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&pool.generation, 1, __ATOMIC_SEQ_CST);
  __builtin_wasm_memory_atomic_notify(&pool.generation, (unsigned)pool.helpers);
  take_items(0);
  int32_t p;
  int spins = 0;
  while ((p = load(&pool.pending)) != 0) {
    if (++spins < SPINS) continue;
    __builtin_wasm_memory_atomic_wait32(&pool.pending, p, 50000000);  // bounded, as a helper's
  }
  __atomic_store_n(&pool.active, 0, __ATOMIC_SEQ_CST);
}

#else

void parallel_for(int items, double work, par_body body, void *ctx) {
  for (int i = 0; i < items; i++) body(ctx, i, 0);
}

EXPORT(arpix_workers) int arpix_workers(void) { return 1; }

#endif
