/* small_ce.c -- the classification kernels' small-call cost in C, no Python in the way
 * (bench/NOTES.md, session 8): best of 300 batches of 200 back-to-back calls.
 *
 *   gcc -O3 -std=c11 -fopenmp -mprefer-vector-width=512 -fno-math-errno -fno-trapping-math \
 *       -ffp-contract=fast -Icsrc csrc/classification.c csrc/runtime.c csrc/pool.c bench/small_ce.c -o /tmp/small_ce -lm
 *   /tmp/small_ce ROWS CLASSES MODE THREADS
 *
 * MODE 0 cross_entropy (index targets, loss + grad), 1 loss only, 2 probability targets,
 * 3 multi_margin p=1, 4 multi_margin p=2; all f32, mean.  Prints the time per call and a
 * checksum of the loss and gradient (to compare two builds' bits). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "fastloss.h"

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static uint64_t lcg(uint64_t *s) { return *s = *s * 6364136223846793005ull + 1442695040888963407ull; }

int main(int argc, char **argv)
{
    const int64_t n = argc > 1 ? atoll(argv[1]) : 256, c = argc > 2 ? atoll(argv[2]) : 10;
    const int mode = argc > 3 ? atoi(argv[3]) : 0;
    fl_set_num_threads(argc > 4 ? atoi(argv[4]) : 1);
    float *x = aligned_alloc(64, (size_t)(n * c * 4 + 64)), *g = aligned_alloc(64, (size_t)(n * c * 4 + 64));
    float *q = aligned_alloc(64, (size_t)(n * c * 4 + 64));
    int64_t *y = malloc((size_t)n * 8);
    uint64_t s = 1;
    for (int64_t i = 0; i < n * c; i++) {
        x[i] = ((int64_t)(lcg(&s) >> 40) - (1 << 23)) / (float)(1 << 22); /* uniform [-2, 2) */
        q[i] = 1.0f / (float)c;
        g[i] = 0;
    }
    for (int64_t i = 0; i < n; i++) y[i] = (int64_t)((lcg(&s) >> 33) % (uint64_t)c);
    double total = 0, best = 1e30;
    for (int r = 0; r < 300; r++) {
        const double t = now_ns();
        for (int k = 0; k < 200; k++) {
            if (mode == 0) total = fl_cross_entropy_f32(g, NULL, x, y, NULL, n, c, 1, -100, 0.0f, 1);
            else if (mode == 1) total = fl_cross_entropy_f32(NULL, NULL, x, y, NULL, n, c, 1, -100, 0.0f, 1);
            else if (mode == 2) total = fl_cross_entropy_prob_f32(g, NULL, x, q, NULL, n, c, 1, 0.0f, 1);
            else total = fl_multi_margin_f32(g, NULL, x, y, NULL, n, c, mode == 3 ? 1 : 2, 1.0f, 1);
        }
        const double e = (now_ns() - t) / 200;
        if (e < best) best = e;
    }
    double h = 0;
    for (int64_t i = 0; i < n * c; i++) h += g[i] * (double)(i % 7 + 1);
    printf("%.3f us per call  loss %.9g  grad checksum %.9g\n", best / 1e3, total, h);
    return 0;
}
