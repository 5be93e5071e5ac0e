/* norm.c -- gradient norms and scaling for clip_grad_norm (see norm_tmpl.h), f32 and f64. */
#include "fl_internal.h"
#include <math.h>

enum { FL_NORM_L1, FL_NORM_L2, FL_NORM_LP, FL_NORM_INF };

#define T float
#define SFX(name) name##_f32
#define FL_FABS fabsf
#include "norm_tmpl.h"
#undef T
#undef SFX
#undef FL_FABS

#define T double
#define SFX(name) name##_f64
#define FL_FABS fabs
#include "norm_tmpl.h"
#undef T
#undef SFX
#undef FL_FABS
