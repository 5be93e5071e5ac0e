/* roofline.c -- the speed of light of a kernel's memory access pattern.
 *
 * A fused kernel that reads R float arrays and writes W float arrays once each can be no
 * faster than a loop that does only those loads and stores.  This file is that loop, built
 * the way the library is built (csrc/build_cffi.py's flags, the same target_clones dispatch
 * as csrc/fl_internal.h's FL_CLONES, the same `omp simd` loop form) and split over threads
 * the way csrc/runtime.c's fl_parallel_sum splits a kernel, through the same fork-join
 * (csrc/pool.c, compiled in; an OpenMP team when it is taken): one contiguous range per
 * thread, boundaries on multiples of 16 floats (whole 64-byte cache lines).
 *
 * Every output gets the mean of the inputs of the element, so no load or store is dead and
 * the values stay in the inputs' range (no overflow to Inf, no denormals, whatever the
 * number of passes).  An output may be one of the inputs: optimizers update param and state
 * in place (read and write the same line: no read-for-ownership), while a loss writes its
 * gradient to a separate array (a store to a line not read first).  With no outputs the
 * loop is a sum of the inputs (a loss computed without its gradient).
 *
 * Cold caches (`python -m fastloss bench --cold`): rl_evict writes a buffer larger than the
 * last-level cache, so that none of a kernel's arrays is left in any cache (see there for the
 * size and why it writes), then rl_seconds times one pass.
 *
 * Built at bench time by fastloss._bench (cffi, into a cache directory), never into the
 * package.  Not part of the library's ABI. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <stdint.h>
#include <time.h>
#include <omp.h>
#include "fl_internal.h" /* fl_split, fl_pool_run: the kernels' fork-join */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RL_CLONES
#endif
#define RL_INLINE static inline __attribute__((always_inline))
#define RL_MAX_STREAMS 8
#define RL_MAX_THREADS 1024

/* Elements [lo, hi) of nin inputs and nout outputs.  nin and nout are compile-time
 * constants after inlining into rl_chunk's switch, so the stream loops unroll and the
 * element loop is one vector body and one tail, as in the library's kernels. */
RL_INLINE double rl_range(const int nin, const int nout, float *const *in, float *const *out,
                          int64_t lo, int64_t hi)
{
    const float *a[RL_MAX_STREAMS];
    float *o[RL_MAX_STREAMS];
    for (int r = 0; r < nin; r++) a[r] = in[r];
    for (int w = 0; w < nout; w++) o[w] = out[w];
    if (nout == 0) { /* read only: a reduction keeps the loads alive */
        float s = 0.0f;
#pragma omp simd reduction(+:s)
        for (int64_t i = lo; i < hi; i++)
            for (int r = 0; r < nin; r++) s += a[r][i];
        return s;
    }
    const float k = 1.0f / (float)nin;
    /* `omp simd`: an output that is an input is read and written at the same index only */
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        float s = a[0][i];
        for (int r = 1; r < nin; r++) s += a[r][i];
        s *= k;
        for (int w = 0; w < nout; w++) o[w][i] = s;
    }
    return 0.0;
}

#define RL_CASE(R, W) case (R) * 16 + (W): return rl_range((R), (W), in, out, lo, hi);

RL_CLONES static double rl_chunk(int nin, int nout, float *const *in, float *const *out,
                                 int64_t lo, int64_t hi)
{
    switch (nin * 16 + nout) {
        RL_CASE(1, 0) RL_CASE(1, 1)
        RL_CASE(2, 0) RL_CASE(2, 1) RL_CASE(2, 2)
        RL_CASE(3, 0) RL_CASE(3, 1) RL_CASE(3, 2) RL_CASE(3, 3)
        RL_CASE(4, 0) RL_CASE(4, 1) RL_CASE(4, 2) RL_CASE(4, 3) RL_CASE(4, 4)
        RL_CASE(5, 0) RL_CASE(5, 1) RL_CASE(5, 2) RL_CASE(5, 3) RL_CASE(5, 4) RL_CASE(5, 5)
        RL_CASE(6, 0) RL_CASE(6, 1) RL_CASE(6, 2) RL_CASE(6, 3) RL_CASE(6, 4) RL_CASE(6, 5)
    default: return -1.0;  /* rejected by rl_pass */
    }
}

/* 1 if (nin, nout) is a pattern this file has a loop for. */
int rl_supported(int nin, int nout)
{
    return nin >= 1 && nin <= 6 && nout >= 0 && nout <= nin && nout <= 5;
}

typedef struct {
    int nin, nout;
    float **in, **out;
} rl_ctx;

static double rl_job(const void *ctx, int64_t lo, int64_t hi)
{
    const rl_ctx *c = ctx;
    return rl_chunk(c->nin, c->nout, c->in, c->out, lo, hi);
}

/* One pass over n elements on `threads` threads (1: on the calling thread, no parallel
 * region).  Returns the sum of the chunks' results (0 unless nout == 0). */
double rl_pass(int nin, int nout, float **in, float **out, int64_t n, int threads)
{
    if (!rl_supported(nin, nout)) return -1.0;
    if (threads > RL_MAX_THREADS) threads = RL_MAX_THREADS;
    if (threads <= 1 || n < 16 * (int64_t)threads) return rl_chunk(nin, nout, in, out, 0, n);
    double part[RL_MAX_THREADS];
    int used = threads;
    const rl_ctx c = {nin, nout, in, out};
    if (fl_pool_run(threads, n, 0, rl_job, &c, part) != 0) {
#pragma omp parallel num_threads(threads)
        {
            int k = omp_get_thread_num(), m = omp_get_num_threads();
            int64_t lo, hi;
            fl_split(n, k, m, &lo, &hi);
            part[k] = rl_chunk(nin, nout, in, out, lo, hi);
            if (k == 0) used = m;
        }
    }
    double s = 0.0;
    for (int k = 0; k < used; k++) s += part[k];
    return s;
}

/* Seconds taken by `reps` back-to-back passes (timed here, so no Python call overhead is
 * included: this is the pattern's own time). */
double rl_time(int nin, int nout, float **in, float **out, int64_t n, int threads, int64_t reps)
{
    volatile double sink = 0.0;
    double t0 = omp_get_wtime();
    for (int64_t r = 0; r < reps; r++) sink += rl_pass(nin, nout, in, out, n, threads);
    return omp_get_wtime() - t0;
}

/* Evict every cache of the threads that run kernels: a read-modify-write pass over `buf`
 * (n floats) on `threads` threads, each on its own contiguous range, so each core's L2 and
 * the shared L3 end up holding (dirty) lines of `buf` and nothing of any kernel's arrays.
 *
 * Why it writes: (1) a buffer that was allocated but never written is mapped to the kernel's
 * single zero page, and reading it would touch one 4 KiB page, evicting nothing; (2) a pure
 * store loop may become a memset, whose large-size path uses non-temporal stores that bypass
 * the caches; a load + store of each element cannot; (3) a training step's forward and
 * backward passes write activations and gradients, so the optimizer meets caches full of
 * dirty lines, whose write-backs its own loads then pay for, as here.  The caller makes the
 * buffer several times the L3: Zen's L3 is a victim cache of the L2s, not strictly LRU, and
 * a buffer of one L3 size leaves part of the old lines in place.  b -> 0.5 b + 1 keeps the
 * values bounded (they tend to 2) whatever the number of passes.  Returns a checksum. */
RL_CLONES static double rl_evict_range(float *b, int64_t lo, int64_t hi)
{
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) b[i] = b[i] * 0.5f + 1.0f;
    return hi > lo ? b[lo] : 0.0;
}

static double rl_evict_job(const void *buf, int64_t lo, int64_t hi)
{
    return rl_evict_range((float *)buf, lo, hi);
}

double rl_evict(float *buf, int64_t n, int threads)
{
    if (threads > RL_MAX_THREADS) threads = RL_MAX_THREADS;
    if (threads <= 1) return rl_evict_range(buf, 0, n);
    double part[RL_MAX_THREADS] = {0};
    if (fl_pool_run(threads, n, 0, rl_evict_job, buf, part) != 0) {
#pragma omp parallel num_threads(threads)
        {
            int64_t lo, hi;
            fl_split(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
            part[omp_get_thread_num()] = rl_evict_range(buf, lo, hi);
        }
    }
    double s = 0.0;
    for (int k = 0; k < threads; k++) s += part[k];
    return s;
}

static double rl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds of one pass over n elements, timed here (clock_gettime): a cold-cache sample when
 * the caller has just run rl_evict. */
double rl_seconds(int nin, int nout, float **in, float **out, int64_t n, int threads)
{
    double t0 = rl_now();
    volatile double sink = rl_pass(nin, nout, in, out, n, threads);
    double t1 = rl_now();
    (void)sink;
    return t1 - t0;
}
