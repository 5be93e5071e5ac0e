/*
 * fastloss.h -- the C ABI of fastloss: every exported kernel is declared here, once.
 *
 * The cffi build (csrc/build_cffi.py) feeds the block between the FL_CDEF markers to
 * ffi.cdef() and compiles the kernels with #include "fastloss.h", so a prototype that
 * drifts from its definition fails the build.  The block must stay cffi-parsable:
 * plain declarations, no preprocessor directives.
 *
 * Conventions (see ../shared/STYLE.md):
 *   - arguments: outputs, then inputs, then sizes, then hyperparameters;
 *   - the first comment line of each kernel gives every pointer's shape;
 *   - kernels never validate: the Python layer (or any other caller) checks shapes, dtypes
 *     and ranges before calling; sizes are element counts;
 *   - every buffer is caller-owned; kernels allocate nothing and keep no state;
 *   - a gradient is written with `=`; optimizer state is updated in place;
 *   - f32 kernels compute in float and accumulate reductions (losses, norms) in double;
 *   - output pointers documented as optional may be NULL: that output is not written;
 *   - elementwise kernels allow an output to be the very same pointer as an input
 *     (out == pred), never a partial overlap.
 */
#ifndef FASTLOSS_H
#define FASTLOSS_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* FL_CDEF_BEGIN */

/* ---- runtime ------------------------------------------------------------------------ */
/* Threads used by the kernels' OpenMP regions (>= 1); the default is omp_get_num_procs(). */
void fl_set_num_threads(int n);
int fl_get_num_threads(void);
/* The instruction-set path the kernels run on this CPU: "x86-64-v4 (AVX-512)",
 * "x86-64-v3 (AVX2+FMA)" or "baseline (SSE2)". */
const char *fl_simd_path(void);
/* The library's ABI version: bumped whenever a declaration in this file changes. */
int fl_abi_version(void);

/* ---- regression losses --------------------------------------------------------------
 * grad[n] (optional), loss[n] (optional), pred[n], target[n]
 * With d = pred - target, per element:
 *   loss[i] = l(d)                  (written when loss != NULL, e.g. reduction="none")
 *   grad[i] = gscale * dl/dpred(d)  (written when grad != NULL; gscale = 1/n for a mean)
 * Returns sum_i l(d_i), accumulated in double.
 *   mse        l = d^2
 *   smooth_l2  l = d^2 / 2
 *   mae        l = |d|                      dl/dd = sign(d), 0 at d == 0 and at NaN (torch)
 *   huber      l = d^2/2 if |d| < delta else delta*(|d| - delta/2)       delta > 0
 *   smooth_l1  l = d^2/(2 beta) if |d| < beta else |d| - beta/2          beta >= 0, 0 = mae
 */
double fl_mse_f32(float *grad, float *loss, const float *pred, const float *target, int64_t n, float gscale);
double fl_mse_f64(double *grad, double *loss, const double *pred, const double *target, int64_t n, double gscale);
double fl_smooth_l2_f32(float *grad, float *loss, const float *pred, const float *target, int64_t n, float gscale);
double fl_smooth_l2_f64(double *grad, double *loss, const double *pred, const double *target, int64_t n, double gscale);
double fl_mae_f32(float *grad, float *loss, const float *pred, const float *target, int64_t n, float gscale);
double fl_mae_f64(double *grad, double *loss, const double *pred, const double *target, int64_t n, double gscale);
double fl_huber_f32(float *grad, float *loss, const float *pred, const float *target, int64_t n, float gscale, float delta);
double fl_huber_f64(double *grad, double *loss, const double *pred, const double *target, int64_t n, double gscale, double delta);
double fl_smooth_l1_f32(float *grad, float *loss, const float *pred, const float *target, int64_t n, float gscale, float beta);
double fl_smooth_l1_f64(double *grad, double *loss, const double *pred, const double *target, int64_t n, double gscale, double beta);

/* ---- SGD, torch.optim.SGD semantics, in place ----------------------------------------
 * param[n] (updated), momentum_buffer[n] (updated; NULL iff momentum == 0), grad[n]
 *   g = grad * grad_scale; g = -g if maximize; g += weight_decay * param (if weight_decay != 0)
 *   momentum != 0: buf = g at step 1, else buf = momentum*buf + (1 - dampening)*g;
 *                  g = g + momentum*buf if nesterov else buf
 *   param -= lr * g
 * step is the 1-based count of this update. */
void fl_sgd_f32(float *param, float *momentum_buffer, const float *grad, int64_t n, int64_t step,
                float lr, float momentum, float dampening, float weight_decay, float grad_scale,
                int nesterov, int maximize);
void fl_sgd_f64(double *param, double *momentum_buffer, const double *grad, int64_t n, int64_t step,
                double lr, double momentum, double dampening, double weight_decay, double grad_scale,
                int nesterov, int maximize);

/* FL_CDEF_END */

#ifdef __cplusplus
}
#endif
#endif /* FASTLOSS_H */
