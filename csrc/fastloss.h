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
/* Threads a large enough kernel call is split over (>= 1; the calling thread is one of them);
 * the default is omp_get_num_procs(). */
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

/* ---- adaptive optimizers (issue 4: csrc/adaptive*.{c,h}) ------------------------------ */
/* The hyperparameters are double: the per-step scalars (bias corrections, step sizes, 1 - beta)
 * are computed once per call in double, as torch computes them in Python, and rounded to the
 * array type once.  step is the 1-based count of this update.  Every state array is updated
 * in place; all arrays are distinct (no overlap).  g below is grad * grad_scale, negated
 * if maximize. */

/* Adam / AdamW, torch.optim.Adam semantics (AdamW: decoupled_weight_decay = 1)
 * param[n], exp_avg[n], exp_avg_sq[n] (updated), max_exp_avg_sq[n] (updated; NULL iff !amsgrad), grad[n]
 *   weight_decay != 0: param *= 1 - lr*weight_decay if decoupled, else g += weight_decay*param
 *   exp_avg = lerp(exp_avg, g, 1 - beta1);  exp_avg_sq = beta2*exp_avg_sq + (1 - beta2)*g*g
 *   amsgrad: max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq), used in place of exp_avg_sq
 *   param -= lr/(1 - beta1^step) * exp_avg / (sqrt(exp_avg_sq) / sqrt(1 - beta2^step) + eps) */
void fl_adam_f32(float *param, float *exp_avg, float *exp_avg_sq, float *max_exp_avg_sq,
                 const float *grad, int64_t n, int64_t step, double lr, double beta1, double beta2,
                 double eps, double weight_decay, double grad_scale, int decoupled_weight_decay,
                 int amsgrad, int maximize);
void fl_adam_f64(double *param, double *exp_avg, double *exp_avg_sq, double *max_exp_avg_sq,
                 const double *grad, int64_t n, int64_t step, double lr, double beta1, double beta2,
                 double eps, double weight_decay, double grad_scale, int decoupled_weight_decay,
                 int amsgrad, int maximize);

/* Adagrad, torch.optim.Adagrad semantics (the caller fills state_sum with
 * initial_accumulator_value before the first step)
 * param[n], state_sum[n] (updated), grad[n]
 *   g += weight_decay*param (if weight_decay != 0);  state_sum += g*g
 *   param -= lr/(1 + (step - 1)*lr_decay) * g / (sqrt(state_sum) + eps) */
void fl_adagrad_f32(float *param, float *state_sum, const float *grad, int64_t n, int64_t step,
                    double lr, double lr_decay, double weight_decay, double eps, double grad_scale,
                    int maximize);
void fl_adagrad_f64(double *param, double *state_sum, const double *grad, int64_t n, int64_t step,
                    double lr, double lr_decay, double weight_decay, double eps, double grad_scale,
                    int maximize);

/* RMSprop, torch.optim.RMSprop semantics (the update does not depend on the step count)
 * param[n], square_avg[n] (updated), momentum_buffer[n] (updated; NULL iff momentum == 0),
 * grad_avg[n] (updated; NULL iff !centered), grad[n]
 *   g += weight_decay*param (if weight_decay != 0);  square_avg = alpha*square_avg + (1 - alpha)*g*g
 *   centered: grad_avg = lerp(grad_avg, g, 1 - alpha), avg = sqrt(square_avg - grad_avg^2) + eps
 *   else avg = sqrt(square_avg) + eps
 *   momentum > 0: buf = momentum*buf + g/avg, param -= lr*buf;  else param -= lr*g/avg */
void fl_rmsprop_f32(float *param, float *square_avg, float *momentum_buffer, float *grad_avg,
                    const float *grad, int64_t n, double lr, double alpha, double eps,
                    double weight_decay, double momentum, double grad_scale, int centered,
                    int maximize);
void fl_rmsprop_f64(double *param, double *square_avg, double *momentum_buffer, double *grad_avg,
                    const double *grad, int64_t n, double lr, double alpha, double eps,
                    double weight_decay, double momentum, double grad_scale, int centered,
                    int maximize);

/* Gradient norms (csrc/norm*.{c,h})
 * x[n]
 * Returns the accumulator of the vector norm of order ord, in double: sum |x| (ord 1),
 * sum x^2 (ord 2), sum |x|^ord (other finite ord > 0), max |x| (ord inf); NaN if any x is
 * NaN.  The caller adds the accumulators of several arrays and finishes: acc^(1/ord). */
double fl_norm_acc_f32(const float *x, int64_t n, double ord);
double fl_norm_acc_f64(const double *x, int64_t n, double ord);
/* x[n] (updated): x *= scale (rounded to the array type once) */
void fl_scale_f32(float *x, int64_t n, double scale);
void fl_scale_f64(double *x, int64_t n, double scale);
/* FL_ADAPTIVE_END */

/* ---- classification losses (csrc/classification*.{c,h}) ------------------------------- */
/* reduction: 0 = none (per-sample losses written to `loss`), 1 = mean, 2 = sum.  Each kernel
 * returns the reduced loss (for none: the sum) and, when grad != NULL, writes d(reduced
 * loss)/d(input) (for none: the gradient of the sum).  grad may be the input itself.
 *
 * Softmax cross-entropy, torch.nn.functional.cross_entropy semantics.
 * grad[n*c*s] (optional), loss[n*s] (optional), logits[n*c*s], target[n*s], weight[c] (optional)
 * logits are laid out (n, c, s): classes on the middle axis, s = d1*...*dk (1 for (N, C)).
 * Class-index targets must lie in [0, c) or equal ignore_index (fl_first_bad_target checks);
 * ignored samples get zero loss and gradient and leave the mean's denominator, which is the
 * sum of the remaining targets' weights.  A mean over a denominator of 0 is torch's IEEE
 * division: (1 - eps) nll / 0 + eps/c smooth / 0 (NaN, or +-inf), and its gradient is the
 * kernel's terms scaled by 1/0 (non-finite in every sample not ignored).  label_smoothing in
 * [0, 1].  c >= 1 (this and
 * the next kernels return NaN and write nothing for c < 1). */
double fl_cross_entropy_f32(float *grad, float *loss, const float *logits, const int64_t *target,
                            const float *weight, int64_t n, int64_t c, int64_t s, int64_t ignore_index,
                            float label_smoothing, int reduction);
double fl_cross_entropy_f64(double *grad, double *loss, const double *logits, const int64_t *target,
                            const double *weight, int64_t n, int64_t c, int64_t s, int64_t ignore_index,
                            double label_smoothing, int reduction);
/* grad[n*c*s] (optional), loss[n*s] (optional), logits[n*c*s], target[n*c*s] (class
 * probabilities, logits' layout), weight[c] (optional).  The mean divides by n*s. */
double fl_cross_entropy_prob_f32(float *grad, float *loss, const float *logits, const float *target,
                                 const float *weight, int64_t n, int64_t c, int64_t s,
                                 float label_smoothing, int reduction);
double fl_cross_entropy_prob_f64(double *grad, double *loss, const double *logits, const double *target,
                                 const double *weight, int64_t n, int64_t c, int64_t s,
                                 double label_smoothing, int reduction);

/* Binary cross-entropy on probabilities (torch binary_cross_entropy: logs clamped >= -100).
 * grad[n] (optional), loss[n] (optional), prob[n] in [0, 1], target[n], weight[n] (optional) */
double fl_binary_cross_entropy_f32(float *grad, float *loss, const float *prob, const float *target,
                                   const float *weight, int64_t n, int reduction);
double fl_binary_cross_entropy_f64(double *grad, double *loss, const double *prob, const double *target,
                                   const double *weight, int64_t n, int reduction);
/* BCE on logits, stable form.  grad[n] (opt), loss[n] (opt), logits[n], target[n],
 * weight[n] (optional), pos_weight[c] (optional; element i uses pos_weight[i % c]) */
double fl_binary_cross_entropy_with_logits_f32(float *grad, float *loss, const float *logits,
                                               const float *target, const float *weight,
                                               const float *pos_weight, int64_t n, int64_t c, int reduction);
double fl_binary_cross_entropy_with_logits_f64(double *grad, double *loss, const double *logits,
                                               const double *target, const double *weight,
                                               const double *pos_weight, int64_t n, int64_t c, int reduction);
/* hinge max(0, margin - t*s) and squared hinge max(0, margin - t*s)^2, t in {-1, +1}.
 * grad[n] (opt), loss[n] (opt), scores[n], target[n], weight[n] (optional) */
double fl_hinge_f32(float *grad, float *loss, const float *scores, const float *target, const float *weight,
                    int64_t n, float margin, int reduction);
double fl_hinge_f64(double *grad, double *loss, const double *scores, const double *target,
                    const double *weight, int64_t n, double margin, int reduction);
double fl_squared_hinge_f32(float *grad, float *loss, const float *scores, const float *target,
                            const float *weight, int64_t n, float margin, int reduction);
double fl_squared_hinge_f64(double *grad, double *loss, const double *scores, const double *target,
                            const double *weight, int64_t n, double margin, int reduction);
/* Multi-class margin, torch multi_margin_loss, p in {1, 2}.
 * grad[n*c] (opt), loss[n] (opt), logits[n*c], target[n] in [0, c), weight[c] (optional);
 * c >= 1 (c < 1: NaN, nothing written). */
double fl_multi_margin_f32(float *grad, float *loss, const float *logits, const int64_t *target,
                           const float *weight, int64_t n, int64_t c, int p, float margin, int reduction);
double fl_multi_margin_f64(double *grad, double *loss, const double *logits, const int64_t *target,
                           const double *weight, int64_t n, int64_t c, int p, double margin, int reduction);

/* Validation helpers (the Python layer calls them before any kernel; kernels never check).
 * Index of the first element that fails, or -1. */
int64_t fl_first_bad_target(const int64_t *target, int64_t n, int64_t c, int64_t ignore_index);
int64_t fl_first_outside_f32(const float *x, int64_t n, float lo, float hi);   /* not in [lo, hi] (NaN fails) */
int64_t fl_first_outside_f64(const double *x, int64_t n, double lo, double hi);
int64_t fl_first_not_sign_f32(const float *x, int64_t n);                      /* not -1 or +1 */
int64_t fl_first_not_sign_f64(const double *x, int64_t n);
/* FL_CLASSIFICATION_END */

/* FL_CDEF_END */

#ifdef __cplusplus
}
#endif
#endif /* FASTLOSS_H */
