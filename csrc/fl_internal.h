/* fl_internal.h -- what every kernel file shares: runtime ISA dispatch, the parallel
 * drivers, and the per-element helpers that must keep NaN/Inf semantics.  Not part of the
 * ABI (fastloss.h is). */
#ifndef FL_INTERNAL_H
#define FL_INTERNAL_H
#include <stdint.h>
#include <stddef.h>
#include "fastloss.h"

/* Runtime SIMD dispatch: GCC function multiversioning.  Each function marked FL_CLONES is
 * compiled three times (AVX-512 with 512-bit vectors, AVX2+FMA, baseline SSE2) and an ifunc
 * resolver picks one when the library is loaded, so one build runs on any x86-64 and uses
 * AVX-512 where the CPU has it.  Only the chunk functions (the loops) are cloned; the OpenMP
 * drivers call them through a pointer. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(FL_NO_CLONES)
#define FL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FL_CLONES
#endif

#define FL_INLINE static inline __attribute__((always_inline))

/* A chunk function processes elements [lo, hi) of one kernel call described by ctx and
 * returns its part of the call's reduction (0 when the kernel reduces nothing). */
typedef double (*fl_chunk_fn)(const void *ctx, int64_t lo, int64_t hi);

/* Run fn over [0, n): on the calling thread when n < 2*grain or one thread is configured,
 * otherwise split into one contiguous, 64-byte-aligned range per thread.  Returns the sum
 * of the chunks' results, added in thread order so that a given thread count always gives
 * the same bits. */
double fl_parallel_sum(int64_t n, int64_t grain, fl_chunk_fn fn, const void *ctx);

/* fl_parallel_sum for a kernel that reduces nothing (fn's results are ignored) and whose
 * every element's result depends on that element alone (the optimizers), so any split
 * gives the same bits.  From FL_DYN_MIN elements the threads take FL_DYN_BLOCK-element
 * blocks in turn instead of one range each: a thread that loses its CPU for a while (to a
 * spinning thread of another library's pool, say) then delays the call by a block, not by
 * its whole range (bench/NOTES.md, session 13). */
void fl_parallel_for(int64_t n, int64_t grain, fl_chunk_fn fn, const void *ctx);
#ifndef FL_DYN_MIN
#define FL_DYN_MIN (1 << 19)
#endif
#ifndef FL_DYN_BLOCK
#define FL_DYN_BLOCK 32768 /* a multiple of 16: blocks start on cache lines */
#endif

/* Software prefetch for the loops that are slow per element (one sqrt and one division
 * each: Adam, Adagrad, RMSprop).  Arrays streamed from far away (n = 1e7 here) need many
 * cache-line misses in flight; a loop bound by the divider keeps its reorder window full of
 * waiting divisions, so its own loads run only a few vectors ahead, and on the Intel
 * AVX-512 host of session 19 such a call took 1.15-1.4x the time of its copy loop (a copy
 * loop keeps pace on its own).  So from FL_PF_MIN_BYTES of arrays per call, a chunk runs in
 * blocks of FL_PF_BLOCK_BYTES per array and before each block asks for the lines
 * FL_PF_AHEAD_BYTES further on in every array it reads (never past the chunk's end: a
 * prefetch does not fault, but an address outside the array is not ours to form).  The
 * blocks change no result: every element of these kernels depends on that element alone.
 * Measured (bench/NOTES.md, session 19; bench/ab_builds.py, old and new library in one
 * process): at n = 1e7, 1 KiB blocks 4 KiB ahead took Adam -4%, Adagrad -10-13%, RMSprop
 * -14% (1, 2 and 8 KiB ahead did less); 256-byte blocks (4 lines an array, so the requests
 * go out a few at a time) then another 3-8%, against 128 and 512 bytes and 2 or 8 KiB
 * ahead.  Always on, prefetching cost 3-4% at n = 1e6 (20-28 MB, cache-resident), hence
 * the threshold; n <= 1e5 unchanged. */
#ifndef FL_PF_MIN_BYTES
#define FL_PF_MIN_BYTES (64LL << 20)
#endif
#ifndef FL_PF_BLOCK_BYTES
#define FL_PF_BLOCK_BYTES 256
#endif
#ifndef FL_PF_AHEAD_BYTES
#define FL_PF_AHEAD_BYTES 4096
#endif

/* The end of the block that starts at b when pf (FL_PF_BLOCK_BYTES of elements of es bytes,
 * or hi), else hi: a chunk that does not prefetch is one block. */
FL_INLINE int64_t fl_pf_end(int pf, int64_t b, int64_t hi, int64_t es)
{
    const int64_t e = b + FL_PF_BLOCK_BYTES / es;
    return pf && e < hi ? e : hi;
}

/* When pf: prefetch (for reading, into every level) the lines of a[k][b + ahead, e + ahead)
 * for each of the na arrays a[k] not NULL, clipped to hi, where ahead is FL_PF_AHEAD_BYTES
 * of elements of es bytes. */
FL_INLINE void fl_prefetch_ahead(int pf, const void *const *a, int na, int64_t es, int64_t b,
                                 int64_t e, int64_t hi)
{
    if (!pf) return;
    const int64_t k = FL_PF_AHEAD_BYTES / es, top = e + k < hi ? e + k : hi;
    for (int j = 0; j < na; j++)
        if (a[j])
            for (int64_t i = b + k; i < top; i += 64 / es) __builtin_prefetch((const char *)a[j] + i * es, 0, 3);
}

#define FL_MAX_THREADS 1024

/* [*lo, *hi): thread k of m's range of [0, n): one contiguous range per thread, boundaries
 * on multiples of 16 elements (whole cache lines per thread). */
FL_INLINE void fl_split(int64_t n, int k, int m, int64_t *lo, int64_t *hi)
{
    const int64_t blocks = (n + 15) / 16;
    *lo = (blocks * k / m) * 16;
    *hi = (blocks * (k + 1) / m) * 16;
    if (*hi > n) *hi = n;
    if (*lo > n) *lo = n;
}

/* fl_parallel_sum's fork-join (pool.c): runs fn over thread k's range of [0, n) for each k
 * < m, the caller taking range 0 and m - 1 helper threads the others, and stores range k's
 * result in part[k].  block > 0 (fl_parallel_for): instead the m threads take blocks
 * [i*block, (i+1)*block) in turn until none is left, and part is not written.  Returns 0,
 * or -1 without running anything when the pool cannot take the job (in use by another
 * thread, a thread could not be started, not Linux). */
int fl_pool_run(int m, int64_t n, int64_t block, fl_chunk_fn fn, const void *ctx, double *part);

/* Per-thread minimum work before a kernel goes parallel.  Set where two threads through
 * pool.c's fork-join (~0.2 us for an empty job; an OpenMP region was 0.7-0.9) first beat one
 * thread, each kernel family timed on 1 and 2 threads at a grain of 16 (bench/NOTES.md,
 * session 12; a Zen 3 host, noisy: the break-even sizes are within a factor of ~1.5).
 * Override with -DFL_GRAIN_...=N to repeat that experiment.
 * Streaming kernels (elements): mse 8192 1.07 -> 0.95-1.85 us, 16384 2.2 -> 1.6 us. */
#ifndef FL_GRAIN_STREAM
#define FL_GRAIN_STREAM 8192
#endif
/* cross_entropy / multi_margin (logits): 0.5-1.5 ns per logit on one thread; 128x10 1.9 ->
 * 1.2-2.1 us, 64x32 2.7 -> 2.9-3.9, 256x10 3.6 -> 2.1-3.1, 500x7 3.1-5.1 -> 1.9 */
#ifndef FL_GRAIN_LOGITS
#define FL_GRAIN_LOGITS 1280
#endif
/* Adam / Adagrad / RMSprop (elements): a sqrt and a divide each; adam 1024 0.44 -> 0.49 us,
 * 2048 1.16 -> 0.64 */
#ifndef FL_GRAIN_SQRT
#define FL_GRAIN_SQRT 1024
#endif

#endif /* FL_INTERNAL_H */
