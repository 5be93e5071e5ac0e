/* runtime.c -- thread count, the parallel driver shared by every kernel (pool.c's fork-join,
 * an OpenMP team when the pool is taken), ISA reporting. */
#include "fl_internal.h"
#include <omp.h>

static int fl_threads = 0; /* 0: not set yet, use omp_get_num_procs() */

void fl_set_num_threads(int n) { fl_threads = n < 1 ? 1 : (n > FL_MAX_THREADS ? FL_MAX_THREADS : n); }

int fl_get_num_threads(void)
{
    if (fl_threads <= 0) { /* first use: omp_get_num_procs() costs ~0.4 us, ask once */
        int n = omp_get_num_procs();
        fl_threads = n < 1 ? 1 : (n > FL_MAX_THREADS ? FL_MAX_THREADS : n);
    }
    return fl_threads;
}

int fl_abi_version(void) { return 1; }

const char *fl_simd_path(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    /* the same test GCC's target_clones resolver applies, in the same order */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
    if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2+FMA)";
    return "baseline (SSE2)";
#else
    return "generic (compiler default)";
#endif
}

/* threads for n elements at `grain` per thread (1: run on the caller) */
static int fl_plan(int64_t n, int64_t grain)
{
    int nt = fl_get_num_threads();
    if (grain < 1) grain = 1;
    if (n / grain < nt) nt = (int)(n / grain);
    return nt;
}

double fl_parallel_sum(int64_t n, int64_t grain, fl_chunk_fn fn, const void *ctx)
{
    const int nt = fl_plan(n, grain);
    if (nt <= 1) return fn(ctx, 0, n);

    double part[FL_MAX_THREADS];
    int used = nt;
    if (fl_pool_run(nt, n, 0, fn, ctx, part) != 0) {
        /* the pool is taken by another thread's call: an OpenMP team, the same ranges */
#pragma omp parallel num_threads(nt)
        {
            int k = omp_get_thread_num(), m = omp_get_num_threads();
            int64_t lo, hi;
            fl_split(n, k, m, &lo, &hi);
            part[k] = fn(ctx, lo, hi);
            if (k == 0) used = m; /* the runtime may grant fewer threads than asked */
        }
    }
    double s = 0.0;
    for (int k = 0; k < used; k++) s += part[k];
    return s;
}

void fl_parallel_for(int64_t n, int64_t grain, fl_chunk_fn fn, const void *ctx)
{
    const int nt = fl_plan(n, grain);
    if (nt <= 1 || n < FL_DYN_MIN) {
        fl_parallel_sum(n, grain, fn, ctx);
        return;
    }
    if (fl_pool_run(nt, n, FL_DYN_BLOCK, fn, ctx, NULL) == 0) return;
    const int64_t blocks = (n + FL_DYN_BLOCK - 1) / FL_DYN_BLOCK;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t i = 0; i < blocks; i++) {
        const int64_t lo = i * FL_DYN_BLOCK, hi = lo + FL_DYN_BLOCK < n ? lo + FL_DYN_BLOCK : n;
        fn(ctx, lo, hi);
    }
}
