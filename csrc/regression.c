/* regression.c -- elementwise regression losses (see regression_tmpl.h), f32 and f64. */
#include "fl_internal.h"

#define T float
#define SFX(name) name##_f32
#define FL_FABS __builtin_fabsf
#include "regression_tmpl.h"
#undef T
#undef SFX
#undef FL_FABS

#define T double
#define SFX(name) name##_f64
#define FL_FABS __builtin_fabs
#include "regression_tmpl.h"
#undef T
#undef SFX
#undef FL_FABS
