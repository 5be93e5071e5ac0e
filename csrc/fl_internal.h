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

/* Per-thread minimum work before a kernel goes parallel (elements).  Measured in
 * bench/NOTES.md: a 2-thread OpenMP region costs ~1-2 us here, one streaming element
 * ~0.1-0.3 ns per byte-stream, so below ~32k elements one thread wins. */
#define FL_GRAIN_STREAM 32768
/* the same for cross_entropy / multi_margin, in logits per thread: their work costs 0.5-1 ns
 * per logit on one thread (~10x a streamed element), so the streaming grain kept calls of up
 * to ~30 us on one thread while fork + join costs ~1 us (bench/NOTES.md, session 6) */
#define FL_GRAIN_LOGITS 2048
/* the same for Adam / Adagrad / RMSprop (elements): a sqrt and a divide each, ~1 cycle per
 * element on one thread, so 2 threads win from ~8k elements (32768: 9.8 -> 6.1 us) */
#define FL_GRAIN_SQRT 4096

#endif /* FL_INTERNAL_H */
