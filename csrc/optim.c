/* optim.c -- in-place optimizer kernels (see optim_tmpl.h), f32 and f64. */
#include "fl_internal.h"

#define T float
#define SFX(name) name##_f32
#include "optim_tmpl.h"
#undef T
#undef SFX

#define T double
#define SFX(name) name##_f64
#include "optim_tmpl.h"
#undef T
#undef SFX
