/* regression.c -- elementwise regression losses (see regression_tmpl.h), f32 and f64. */
#include "fl_internal.h"

#define T float
#define SFX(name) name##_f32
#define FL_FABS __builtin_fabsf
#define FL_COPYSIGN __builtin_copysignf
#include "regression_tmpl.h"
#undef T
#undef SFX
#undef FL_FABS
#undef FL_COPYSIGN

#define T double
#define SFX(name) name##_f64
#define FL_FABS __builtin_fabs
#define FL_COPYSIGN __builtin_copysign
#include "regression_tmpl.h"
#undef T
#undef SFX
#undef FL_FABS
#undef FL_COPYSIGN
