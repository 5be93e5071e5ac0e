/* pool.c -- the fork-join under fl_parallel_sum: persistent helper threads that take one
 * range each of a kernel call and hand back its partial sum.
 *
 * Why not an OpenMP region: an empty 2-thread GOMP region costs 0.7 us here (fork, two
 * barriers, join), about a third of a 1000x7 multi_margin call, so small calls either paid
 * it or stayed on one thread (bench/NOTES.md, session 12).  This handshake is the least a
 * fork-join can do: the caller writes the job and bumps a generation counter (one cache
 * line the helpers read), each helper writes its result and the generation it finished into
 * a line of its own (one line the caller reads).  Measured with an empty job, 2 threads:
 * 0.15 us against GOMP's 0.70-0.79.
 *
 * Waiting: a helper spins on the generation counter (with `pause`) for FL_POOL_SPIN_NS after
 * its last job, then sleeps on a futex; the caller wakes sleepers when it bumps the counter.
 * GOMP spins the same way (longer, by default).  When more threads are asked for than there
 * are CPUs, nobody spins: a spinning thread would hold the CPU a working one needs; nor
 * with OMP_WAIT_POLICY=passive, the setting that stops OpenMP's spinning.
 *
 * One job at a time: a call that finds the pool busy (another thread of the process is
 * inside a kernel) gets -1 and its caller runs the OpenMP region instead, so concurrent
 * callers are never serialized.  Linux only (futex); elsewhere fl_pool_run always returns
 * -1, as it does when the environment has FASTLOSS_POOL=0 when the library first runs a
 * parallel call (the tests compare the two paths' bits that way).  The same range split as
 * the OpenMP path (fl_split), and the caller adds the partial sums in thread order, so a
 * thread count gives the same bits on either path.  Large optimizer calls (fl_parallel_for)
 * hand out fixed-size blocks from a shared counter instead: every thread, the caller
 * included, takes the next block until none is left, so a helper that loses its CPU
 * delays the call by one block at most.
 *
 * Lifetime: helpers start at the first parallel call (as many as that call needs less one,
 * more later if the thread count grows), block every signal (signals go to the process's
 * other threads), are forgotten in a fork()ed child (they do not exist there; the child
 * starts its own), and are stopped and joined when the library is unloaded, so dlclose()
 * never leaves a thread running in unmapped code. */
#define _GNU_SOURCE
#include "fl_internal.h"

#if defined(__linux__) && !defined(FL_NO_POOL)
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <stdatomic.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* how long a helper spins for its next job before it sleeps (GOMP: ~300k spins) */
#define FL_POOL_SPIN_NS 200000

#if defined(__x86_64__) || defined(__i386__)
#define fl_relax() __builtin_ia32_pause()
#else
#define fl_relax() ((void)0)
#endif

/* one line per helper: written by the helper, read by the caller */
typedef struct {
    _Alignas(64) atomic_uint done; /* the generation of the last job this helper finished */
    double result;                 /* its range's partial sum */
    pthread_t thread;
} fl_slot;

static struct {
    /* the job: written by the caller before it bumps gen, read by the helpers after */
    _Alignas(64) atomic_uint gen;
    int m;            /* threads taking part: the caller is 0, helpers 1..m-1 */
    int spin;         /* helpers may spin (m <= CPUs) */
    int quit;         /* set once, when the library is unloaded */
    int64_t n;
    int64_t block;    /* > 0: blocks taken in turn (fl_parallel_for), else a range each */
    fl_chunk_fn fn;
    const void *ctx;
    _Alignas(64) atomic_llong next;   /* the next block to take */
    _Alignas(64) atomic_int sleepers; /* helpers in (or about to enter) futex_wait */
    _Alignas(64) atomic_int busy;     /* a caller holds the pool */
    int helpers;                      /* started so far (slots 1..helpers) */
    int cpus;
    int off;                          /* FASTLOSS_POOL=0: every call takes the OpenMP path */
    int passive;                      /* OMP_WAIT_POLICY=passive: sleep at once, never spin */
} P;

static fl_slot slot[FL_MAX_THREADS];
static pthread_once_t fl_pool_once = PTHREAD_ONCE_INIT;

static long fl_futex(atomic_uint *addr, int op, unsigned val)
{
    return syscall(SYS_futex, (unsigned *)addr, op, val, NULL, NULL, 0);
}

static int64_t fl_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Wait until gen differs from `seen`; returns the new generation.  `spin`: the last job's
 * setting (read with its fields: the caller may be writing the next job's now). */
static unsigned fl_wait_job(unsigned seen, int spin)
{
    unsigned g;
    if (spin) {
        int64_t t0 = 0;
        for (unsigned i = 1;; i++) {
            if ((g = atomic_load_explicit(&P.gen, memory_order_acquire)) != seen) return g;
            fl_relax();
            if ((i & 255) == 0) { /* read the clock every 256 spins (~10 us here) */
                int64_t t = fl_now_ns();
                if (!t0) t0 = t;
                else if (t - t0 > FL_POOL_SPIN_NS) break;
            }
        }
    }
    /* Sleep.  Either the caller's seq_cst gen bump comes before our seq_cst sleepers
     * increment (then the reload below sees it) or it sees sleepers > 0 and wakes us; the
     * kernel rechecks gen == seen before it puts us to sleep. */
    atomic_fetch_add(&P.sleepers, 1);
    while ((g = atomic_load(&P.gen)) == seen) fl_futex(&P.gen, FUTEX_WAIT_PRIVATE, seen);
    atomic_fetch_sub(&P.sleepers, 1);
    return g;
}

/* blocks of the job in turn until none is left (fl_parallel_for's kernels: no results) */
static void fl_take_blocks(void)
{
    const int64_t n = P.n, b = P.block;
    for (;;) {
        const int64_t lo = atomic_fetch_add_explicit(&P.next, 1, memory_order_relaxed) * b;
        if (lo >= n) return;
        P.fn(P.ctx, lo, lo + b < n ? lo + b : n);
    }
}

static void *fl_helper(void *arg)
{
    const int k = (int)(intptr_t)arg;
    unsigned seen = atomic_load_explicit(&slot[k].done, memory_order_relaxed);
    int spin = 1; /* its first job is being written now */
    for (;;) {
        const unsigned g = fl_wait_job(seen, spin);
        seen = g;
        if (P.quit) return NULL;
        spin = P.spin;
        double r = 0.0;
        if (k < P.m && P.block > 0) {
            fl_take_blocks();
        } else if (k < P.m) { /* a helper beyond this job's thread count only acknowledges it */
            int64_t lo, hi;
            fl_split(P.n, k, P.m, &lo, &hi);
            if (lo < hi) r = P.fn(P.ctx, lo, hi);
        }
        slot[k].result = r;
        atomic_store_explicit(&slot[k].done, g, memory_order_release);
    }
}

static void fl_pool_forget(void) /* in a fork()ed child: the helpers were not copied */
{
    P.helpers = 0;
    atomic_store(&P.sleepers, 0);
    atomic_store(&P.busy, 0);
}

static void fl_pool_init(void)
{
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) c = CPU_COUNT(&set);
    P.cpus = c < 1 ? 1 : (int)c;
    const char *env = getenv("FASTLOSS_POOL");
    P.off = env && env[0] == '0' && env[1] == 0;
    env = getenv("OMP_WAIT_POLICY"); /* as libgomp reads it: passive = never spin */
    P.passive = env && strncasecmp(env, "passive", 7) == 0;
    pthread_atfork(NULL, NULL, fl_pool_forget);
}

/* Start helpers until there are `want`; returns how many there are. */
static int fl_pool_grow(int want)
{
    if (P.helpers >= want) return P.helpers;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the helpers inherit it */
    while (P.helpers < want) {
        const int k = P.helpers + 1;
        atomic_store(&slot[k].done, atomic_load(&P.gen)); /* the last job it has not to do */
        if (pthread_create(&slot[k].thread, NULL, fl_helper, (void *)(intptr_t)k) != 0) break;
        P.helpers = k;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return P.helpers;
}

int fl_pool_run(int m, int64_t n, int64_t block, fl_chunk_fn fn, const void *ctx, double *part)
{
    if (m < 2 || m > FL_MAX_THREADS) return -1;
    pthread_once(&fl_pool_once, fl_pool_init);
    if (P.off) return -1;
    if (atomic_exchange_explicit(&P.busy, 1, memory_order_acquire)) return -1;
    if (P.quit || fl_pool_grow(m - 1) < m - 1) {
        atomic_store_explicit(&P.busy, 0, memory_order_release);
        return -1;
    }
    P.m = m;
    P.spin = m <= P.cpus && !P.passive;
    P.n = n;
    P.block = block;
    P.fn = fn;
    P.ctx = ctx;
    atomic_store_explicit(&P.next, 0, memory_order_relaxed); /* published by the gen store */
    const unsigned g = atomic_load_explicit(&P.gen, memory_order_relaxed) + 1;
    atomic_store(&P.gen, g); /* seq_cst: publishes the job, pairs with the sleepers count */
    if (atomic_load(&P.sleepers)) fl_futex(&P.gen, FUTEX_WAKE_PRIVATE, INT_MAX);

    if (block > 0) {
        fl_take_blocks();
    } else {
        int64_t lo, hi;
        fl_split(n, 0, m, &lo, &hi);
        part[0] = lo < hi ? fn(ctx, lo, hi) : 0.0;
    }

    /* every helper acknowledges every job, so none still reads this one's fields when the
     * next is written */
    const int64_t t0 = P.spin ? fl_now_ns() : 0;
    for (int k = 1; k <= P.helpers; k++) {
        for (unsigned i = 1; atomic_load_explicit(&slot[k].done, memory_order_acquire) != g; i++) {
            if (!P.spin || ((i & 255) == 0 && fl_now_ns() - t0 > FL_POOL_SPIN_NS)) sched_yield();
            else fl_relax();
        }
        if (k < m && block <= 0) part[k] = slot[k].result;
    }
    atomic_store_explicit(&P.busy, 0, memory_order_release);
    return 0;
}

__attribute__((destructor)) static void fl_pool_stop(void)
{
    if (!P.helpers || atomic_exchange(&P.busy, 1)) return;
    P.quit = 1;
    atomic_store(&P.gen, atomic_load(&P.gen) + 1);
    fl_futex(&P.gen, FUTEX_WAKE_PRIVATE, INT_MAX);
    for (int k = 1; k <= P.helpers; k++) pthread_join(slot[k].thread, NULL);
    P.helpers = 0;
}

#else /* not Linux: the OpenMP region does it all */

int fl_pool_run(int m, int64_t n, int64_t block, fl_chunk_fn fn, const void *ctx, double *part)
{
    (void)m, (void)n, (void)block, (void)fn, (void)ctx, (void)part;
    return -1;
}

#endif
