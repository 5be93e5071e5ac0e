/* entry.c -- fastloss._entry: the public functions' fast path, in C.
 *
 * A call from Python with small arrays is mostly interpreter work: validation, dispatch,
 * cffi pointer conversion (bench/NOTES.md: ~2-3 us of a 3 us call at n = 1e3, the kernel
 * 0.1-0.3 us).  Each function here takes a public function's arguments as they came, and
 * when they are the common, already valid case -- exact ndarrays, C-contiguous, aligned,
 * float32/float64 of one dtype and shape, writeable where written, no overlaps, Python
 * floats/ints/bools in range -- it calls the kernel and returns the public function's
 * result.  Otherwise it returns NotImplemented and touches nothing: the caller runs its
 * checked Python path, which converts what may be converted and raises the error that
 * names the argument.  So the rules live in one place (fastloss/_validate.py and the
 * public functions); this file only recognises a subset of what they accept.
 *
 * Every function takes the public call's `backend` argument last: None takes the fast path
 * while the default backend is "c", "c" always (both switchable off for tests).  Every
 * function also serves the Numba backend (by name, or as the default once its module is
 * loaded): the same checks here, then its backend function, bound with bind_py, is called
 * with the validated arrays, so a Numba call skips the Python checks too.
 *
 * The kernels are not compiled in here: fastloss/_fast.py binds their addresses from the
 * cffi module (one copy of the kernels and of their thread settings).  This is the only C
 * that knows Python; the kernels stay plain C (csrc/fastloss.h).
 *
 * Arrays are read through NumPy's C API (their fields, PyArray_Scalar, PyArray_NewLikeArray),
 * not the buffer protocol: NumPy's getbuffer builds and compares a format string per call,
 * and a float32 result made by calling numpy.float32 goes through array construction; the
 * two were ~0.3 us of a 2.5 us call (bench/NOTES.md, session 10).  Built against NumPy 2's
 * headers, which target the 1.23 ABI by default (numpy >= 1.24 at run time).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ bound objects */

enum {
    K_MSE, K_SMOOTH_L2, K_MAE, K_HUBER, K_SMOOTH_L1, K_SGD, K_ADAM, K_ADAGRAD, K_RMSPROP,
    K_CROSS_ENTROPY, K_FIRST_BAD_TARGET, K_BCE, K_BCE_LOGITS, K_HINGE, K_SQUARED_HINGE,
    K_FIRST_OUTSIDE, K_FIRST_NOT_SIGN, K_MULTI_MARGIN, K_CROSS_ENTROPY_PROB, K_COUNT
};
static const char *const kernel_names[K_COUNT] = {
    "mse", "smooth_l2", "mae", "huber", "smooth_l1", "sgd", "adam", "adagrad", "rmsprop",
    "cross_entropy", "first_bad_target", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "hinge", "squared_hinge", "first_outside", "first_not_sign", "multi_margin", "cross_entropy_prob",
};
static void *kern[K_COUNT][2]; /* [kernel][0: float32, 1: float64] */
enum { ROUTE_NONE, ROUTE_C, ROUTE_NUMBA };
static PyObject *pyk[K_COUNT]; /* the Numba backend's function for a kernel, once bound */
static int on_default;         /* backend=None comes here: ROUTE_C / ROUTE_NUMBA (the default) */
static int on_named;           /* backend="c" / "numba" come here */
static PyArray_Descr *descr[2]; /* float32, float64: the results' scalar types */

#define NOT_MINE Py_RETURN_NOTIMPLEMENTED
/* Kernels longer than this run without the GIL (as cffi calls do); shorter ones keep it:
 * releasing and taking it back costs more than their whole run. */
#define NOGIL_MIN 32768

/* ------------------------------------------------------------------ arguments */

/* Where a call with this backend argument goes: ROUTE_C, ROUTE_NUMBA (kernel k's Numba
 * function is bound) or ROUTE_NONE (decline). */
static int route(PyObject *backend, int k)
{
    int r = ROUTE_NONE;
    if (backend == Py_None) r = on_default;
    else if (on_named && PyUnicode_Check(backend)) {
        if (PyUnicode_CompareWithASCIIString(backend, "c") == 0) r = ROUTE_C;
        else if (PyUnicode_CompareWithASCIIString(backend, "numba") == 0) r = ROUTE_NUMBA;
    }
    return r == ROUTE_NUMBA && !pyk[k] ? ROUTE_NONE : r;
}

/* the Numba backend's function for kernel k called with args; a new reference or NULL */
static PyObject *call_numba(int k, PyObject *const *args, size_t nargs)
{
    return PyObject_Vectorcall(pyk[k], args, nargs, NULL);
}

/* an array's memory, shape and element size (borrowed from the array the caller passed) */
typedef struct {
    void *buf;
    Py_ssize_t len, itemsize; /* bytes, bytes per element */
    int ndim;
    const Py_ssize_t *shape;
} view_t;

typedef struct {
    view_t v;
    int held;      /* v describes an accepted array */
    int dt;        /* 0 float32, 1 float64, 2 int64 */
    int64_t n;     /* elements */
} arr_t;

/* Nothing to give back (no buffer is exported): the caller's references keep the arrays
 * alive, and while a kernel runs without the GIL they also make ndarray.resize refuse. */
static void release(arr_t *a)
{
    a->held = 0;
}

/* The Numba backend's function for kernel k on args; args[i] is a new reference when bit i
 * of own is set (dropped here; NULL when its allocation failed).  Its float result in *s;
 * 0 with a Python error set on failure. */
static int numba_total(int k, PyObject **args, size_t nargs, unsigned own, double *s)
{
    int ok = 1;
    for (size_t i = 0; i < nargs; i++) ok = ok && args[i] != NULL;
    PyObject *res = ok ? call_numba(k, args, nargs) : NULL;
    for (size_t i = 0; i < nargs; i++)
        if (own >> i & 1) Py_XDECREF(args[i]);
    if (!res) return 0;
    *s = PyFloat_AsDouble(res);
    Py_DECREF(res);
    return !PyErr_Occurred();
}

/* after a failed numba_total: the arrays (NULL or held or not) released, the results
 * dropped; NULL (the Python error stays set) */
static PyObject *numba_failed(arr_t *a, arr_t *b, arr_t *c, arr_t *d, PyObject *gobj, PyObject *lobj)
{
    arr_t *all[4] = {a, b, c, d};
    for (int i = 0; i < 4; i++)
        if (all[i]) release(all[i]);
    Py_XDECREF(gobj);
    Py_XDECREF(lobj);
    return NULL;
}

/* NumPy's flag for arrays that warn when written (np.broadcast_arrays' results); not in its
 * public headers.  Such an out= is left to the Python path, which warns as NumPy does. */
#define FL_NPY_WARN_ON_WRITE 0x80000000u

/* o as an exact ndarray, C-contiguous, aligned, native byte order, of a float dtype (or
 * int64 if want_int); writeable if asked.  0 (no Python error set) when it is not that. */
static int get(PyObject *o, arr_t *a, int writeable, int want_int)
{
    a->held = 0;
    if (!PyArray_CheckExact(o)) return 0;
    PyArrayObject *ar = (PyArrayObject *)o;
    const unsigned flags = (unsigned)PyArray_FLAGS(ar);
    if (!(flags & NPY_ARRAY_C_CONTIGUOUS) ||
        (writeable && (!(flags & NPY_ARRAY_WRITEABLE) || (flags & FL_NPY_WARN_ON_WRITE))))
        return 0;
    const PyArray_Descr *d = PyArray_DESCR(ar);
    if (!PyArray_ISNBO(d->byteorder)) return 0;
    int dt = -1;
    Py_ssize_t size = 0;
    switch (d->type_num) {
    case NPY_FLOAT: dt = want_int ? -1 : 0; size = 4; break;
    case NPY_DOUBLE: dt = want_int ? -1 : 1; size = 8; break;
    case NPY_LONG: dt = want_int && NPY_SIZEOF_LONG == 8 ? 2 : -1; size = 8; break;
    case NPY_LONGLONG: dt = want_int && NPY_SIZEOF_LONGLONG == 8 ? 2 : -1; size = 8; break;
    default: break;
    }
    void *buf = PyArray_DATA(ar);
    if (dt < 0 || (uintptr_t)buf % (uintptr_t)size != 0) return 0;
    const int nd = PyArray_NDIM(ar);
    const npy_intp *dims = PyArray_DIMS(ar);
    Py_ssize_t n = 1;
    for (int i = 0; i < nd; i++) n *= dims[i];
    a->v = (view_t){buf, n * size, size, nd, (const Py_ssize_t *)dims};
    a->held = 1;
    a->dt = dt;
    a->n = (int64_t)n;
    return 1;
}

static int same_shape(const arr_t *a, const arr_t *b)
{
    return a->v.ndim == b->v.ndim &&
           (a->v.ndim == 0 || !memcmp(a->v.shape, b->v.shape, (size_t)a->v.ndim * sizeof(Py_ssize_t)));
}

static int overlap(const arr_t *a, const arr_t *b)
{
    const char *p = a->v.buf, *q = b->v.buf;
    return a->v.len > 0 && b->v.len > 0 && p < q + b->v.len && q < p + a->v.len;
}

/* x is a Python float (exactly), stored in *v */
static int pyfloat(PyObject *x, double *v)
{
    if (!PyFloat_CheckExact(x)) return 0;
    *v = PyFloat_AS_DOUBLE(x);
    return 1;
}

static int pybool(PyObject *x, int *v)
{
    if (x == Py_True) { *v = 1; return 1; }
    if (x == Py_False) { *v = 0; return 1; }
    return 0;
}

/* an exact int that fits int64 */
static int pyint(PyObject *x, int64_t *v)
{
    if (!PyLong_CheckExact(x)) return 0;
    int overflow = 0;
    long long r = PyLong_AsLongLongAndOverflow(x, &overflow);
    if (overflow || (r == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *v = (int64_t)r;
    return 1;
}

/* "mean" -> 1, "sum" -> 2, "none" -> NONE (the elementwise losses only), else 0 */
enum { NONE = 3 };
static int reduction_mode(PyObject *r)
{
    if (!PyUnicode_Check(r)) return 0;
    if (PyUnicode_CompareWithASCIIString(r, "mean") == 0) return 1;
    if (PyUnicode_CompareWithASCIIString(r, "sum") == 0) return 2;
    if (PyUnicode_CompareWithASCIIString(r, "none") == 0) return NONE;
    return 0;
}

/* The gradient buffer of a loss: out (validated: like x, writeable, and either one of the
 * inputs exactly or apart from both) or a new array like x.  Returns a new reference with
 * g filled, NULL with no error when out is not acceptable, NULL with an error on failure. */
static PyObject *grad_buffer(PyObject *out, PyObject *x_obj, const arr_t *x, const arr_t *t, arr_t *g)
{
    if (out == Py_None) {
        PyObject *r = PyArray_NewLikeArray((PyArrayObject *)x_obj, NPY_CORDER, NULL, 0);
        if (!r) return NULL;
        if (!get(r, g, 1, 0)) { /* cannot happen: a new C-ordered array like x */
            Py_DECREF(r);
            PyErr_SetString(PyExc_RuntimeError, "fastloss._entry: a new array like x was refused");
            return NULL;
        }
        return r;
    }
    if (!get(out, g, 1, 0)) return NULL;
    /* "exactly": the same start, dtype and shape (an int64 target never is: a float out= at
     * its address would overwrite class indices not yet read) */
    if (g->dt != x->dt || !same_shape(g, x) || (overlap(g, x) && g->v.buf != x->v.buf) ||
        (overlap(g, t) && !(g->v.buf == t->v.buf && g->dt == t->dt && same_shape(g, t)))) {
        release(g);
        return NULL;
    }
    Py_INCREF(out);
    return out;
}

/* numpy.float32(v) / numpy.float64(v) */
static PyObject *scalar(int dt, double v)
{
    if (dt == 0) {
        const float f = (float)v;
        return PyArray_Scalar((void *)&f, descr[0], NULL);
    }
    return PyArray_Scalar(&v, descr[1], NULL);
}

/* (loss, grad) or loss, as the public losses return them; steals grad */
static PyObject *loss_result(int dt, double total, PyObject *grad)
{
    PyObject *loss = scalar(dt, total);
    if (!loss || !grad) {
        Py_XDECREF(grad);
        return loss;
    }
    PyObject *r = PyTuple_Pack(2, loss, grad);
    Py_DECREF(loss);
    Py_DECREF(grad);
    return r;
}

/* reduction "none": (loss, grad) or loss, the per-element losses in a new array like x;
 * steals both */
static PyObject *none_result(PyObject *loss, PyObject *grad)
{
    if (!grad) return loss;
    PyObject *r = PyTuple_Pack(2, loss, grad);
    Py_DECREF(loss);
    Py_DECREF(grad);
    return r;
}

/* A loss declines: its input buffers released; NULL if a Python error is pending (an
 * allocation failed), else NotImplemented. */
static PyObject *decline(arr_t *x, arr_t *t)
{
    release(x);
    release(t);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NOTIMPLEMENTED;
}

/* The arguments an elementwise loss entry shares, (kernel, x, target, reduction, grad, out,
 * hyper, backend): the route (ROUTE_NONE: decline) with *k in [lo, hi], *mode and
 * *want_grad set when they are the common case.  numba: let ROUTE_NUMBA through. */
static int loss_args(PyObject *const *args, Py_ssize_t nargs, int lo, int hi, int64_t *k, int *mode,
                     int *want_grad, int numba)
{
    if (!(nargs == 8 && pyint(args[0], k) && *k >= lo && *k <= hi)) return ROUTE_NONE;
    const int r = route(args[7], (int)*k);
    if (r == ROUTE_NONE || (r == ROUTE_NUMBA && !numba)) return ROUTE_NONE;
    return (*mode = reduction_mode(args[3])) != 0 && pybool(args[4], want_grad) &&
           (*want_grad || args[5] == Py_None) ? r : ROUTE_NONE;
}

/* x and target of one float dtype and shape, not empty */
static int loss_pair(PyObject *xo, PyObject *to, arr_t *x, arr_t *t)
{
    return get(xo, x, 0, 0) && get(to, t, 0, 0) && t->dt == x->dt && same_shape(x, t) && x->n > 0;
}

/* ------------------------------------------------------------------ regression losses */

typedef double (*ew32_fn)(float *, float *, const float *, const float *, int64_t, float);
typedef double (*ew64_fn)(double *, double *, const double *, const double *, int64_t, double);
typedef double (*ew32h_fn)(float *, float *, const float *, const float *, int64_t, float, float);
typedef double (*ew64h_fn)(double *, double *, const double *, const double *, int64_t, double, double);

/* ew(kernel, pred, target, reduction, grad, out, hyper, backend): fastloss.losses' mse, smooth_l2,
 * mae, huber (hyper = delta > 0), smooth_l1 (hyper = beta >= 0); hyper None for the others. */
static PyObject *ew(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t k;
    int want_grad, mode;
    double h = 0.0;
    const int r = loss_args(args, nargs, K_MSE, K_SMOOTH_L1, &k, &mode, &want_grad, 1);
    if (!r) NOT_MINE;
    if (k == K_HUBER && !(pyfloat(args[6], &h) && h > 0.0)) NOT_MINE;
    if (k == K_SMOOTH_L1 && !(pyfloat(args[6], &h) && h >= 0.0)) NOT_MINE;
    arr_t p = {0}, t = {0}, g = {0}, l = {0};
    PyObject *gobj = NULL, *lobj = NULL;
    int ok = loss_pair(args[1], args[2], &p, &t);
    if (ok && want_grad) ok = (gobj = grad_buffer(args[5], args[1], &p, &t, &g)) != NULL;
    if (ok && mode == NONE) ok = (lobj = grad_buffer(Py_None, args[1], &p, &t, &l)) != NULL;
    if (!ok) {
        Py_XDECREF(gobj);
        release(&g);
        return decline(&p, &t);
    }
    const int64_t n = p.n;
    const double gscale = mode == 1 ? 1.0 / (double)n : 1.0;
    double s = 0.0;
    if (r == ROUTE_NUMBA) { /* backend.numba.<loss>(grad, loss, pred, target, gscale[, h]) */
        PyObject *a[6] = {gobj ? gobj : Py_None, lobj ? lobj : Py_None, args[1], args[2],
                          PyFloat_FromDouble(gscale), args[6]};
        if (!numba_total((int)k, a, k >= K_HUBER ? 6 : 5, 1u << 4, &s))
            return numba_failed(&p, &t, &g, &l, gobj, lobj);
    } else {
        PyThreadState *ts = n >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        void *gb = g.held ? g.v.buf : NULL, *lb = l.held ? l.v.buf : NULL;
        if (k >= K_HUBER)
            s = p.dt == 0 ? ((ew32h_fn)kern[k][0])(gb, lb, p.v.buf, t.v.buf, n, (float)gscale, (float)h)
                          : ((ew64h_fn)kern[k][1])(gb, lb, p.v.buf, t.v.buf, n, gscale, h);
        else
            s = p.dt == 0 ? ((ew32_fn)kern[k][0])(gb, lb, p.v.buf, t.v.buf, n, (float)gscale)
                          : ((ew64_fn)kern[k][1])(gb, lb, p.v.buf, t.v.buf, n, gscale);
        if (ts) PyEval_RestoreThread(ts);
    }
    const int dt = p.dt;
    release(&p);
    release(&t);
    release(&g);
    release(&l);
    if (mode == NONE) return none_result(lobj, gobj);
    return loss_result(dt, mode == 1 ? s / (double)n : s, gobj);
}

/* ------------------------------------------------------------------ binary losses */

typedef double (*bce32_fn)(float *, float *, const float *, const float *, const float *, int64_t, int);
typedef double (*bce64_fn)(double *, double *, const double *, const double *, const double *, int64_t, int);
typedef double (*bcel32_fn)(float *, float *, const float *, const float *, const float *, const float *,
                            int64_t, int64_t, int);
typedef double (*bcel64_fn)(double *, double *, const double *, const double *, const double *,
                            const double *, int64_t, int64_t, int);
typedef double (*hinge32_fn)(float *, float *, const float *, const float *, const float *, int64_t, float, int);
typedef double (*hinge64_fn)(double *, double *, const double *, const double *, const double *, int64_t,
                             double, int);
typedef int64_t (*outside32_fn)(const float *, int64_t, float, float);
typedef int64_t (*outside64_fn)(const double *, int64_t, double, double);
typedef int64_t (*notsign32_fn)(const float *, int64_t);
typedef int64_t (*notsign64_fn)(const double *, int64_t);

/* binary(kernel, x, target, reduction, grad, out, margin, backend): binary_cross_entropy (every prob
 * in [0, 1]), binary_cross_entropy_with_logits, hinge and squared_hinge (every target -1 or
 * +1, margin a finite float; None for the other two), without weights. */
static PyObject *binary(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t k;
    int want_grad, mode;
    double margin = 0.0;
    const int r = loss_args(args, nargs, K_BCE, K_SQUARED_HINGE, &k, &mode, &want_grad, 1);
    if (!r) NOT_MINE;
    if (k >= K_HINGE && !(pyfloat(args[6], &margin) && isfinite(margin))) NOT_MINE;
    arr_t x = {0}, t = {0}, g = {0};
    int ok = loss_pair(args[1], args[2], &x, &t);
    if (ok && k == K_BCE) /* probabilities and targets in [0, 1], as torch checks both */
        ok = (x.dt == 0 ? ((outside32_fn)kern[K_FIRST_OUTSIDE][0])(x.v.buf, x.n, 0.0f, 1.0f)
                        : ((outside64_fn)kern[K_FIRST_OUTSIDE][1])(x.v.buf, x.n, 0.0, 1.0)) < 0 &&
             (x.dt == 0 ? ((outside32_fn)kern[K_FIRST_OUTSIDE][0])(t.v.buf, t.n, 0.0f, 1.0f)
                        : ((outside64_fn)kern[K_FIRST_OUTSIDE][1])(t.v.buf, t.n, 0.0, 1.0)) < 0;
    if (ok && k >= K_HINGE)
        ok = (x.dt == 0 ? ((notsign32_fn)kern[K_FIRST_NOT_SIGN][0])(t.v.buf, t.n)
                        : ((notsign64_fn)kern[K_FIRST_NOT_SIGN][1])(t.v.buf, t.n)) < 0;
    PyObject *gobj = NULL, *lobj = NULL;
    arr_t l = {0};
    if (ok && want_grad) ok = (gobj = grad_buffer(args[5], args[1], &x, &t, &g)) != NULL;
    if (ok && mode == NONE) ok = (lobj = grad_buffer(Py_None, args[1], &x, &t, &l)) != NULL;
    if (!ok) {
        Py_XDECREF(gobj);
        release(&g);
        return decline(&x, &t);
    }
    const int64_t n = x.n, c = x.v.ndim ? x.v.shape[x.v.ndim - 1] : 1;
    const int red = mode == NONE ? 0 : mode; /* the kernels' code for "none" is 0 */
    void *gb = g.held ? g.v.buf : NULL, *lb = l.held ? l.v.buf : NULL;
    double s;
    if (r == ROUTE_NUMBA) { /* backend.numba.<loss>(grad, loss, x, target, weight, [pos_weight, c | margin,] reduction) */
        PyObject *go = gobj ? gobj : Py_None, *lo = lobj ? lobj : Py_None;
        PyObject *a[8] = {go, lo, args[1], args[2], Py_None};
        size_t na;
        unsigned own;
        if (k == K_BCE) a[5] = PyLong_FromLong(red), na = 6, own = 1u << 5;
        else if (k == K_BCE_LOGITS)
            a[5] = Py_None, a[6] = PyLong_FromLongLong(c), a[7] = PyLong_FromLong(red), na = 8, own = 3u << 6;
        else a[5] = args[6], a[6] = PyLong_FromLong(red), na = 7, own = 1u << 6;
        if (!numba_total((int)k, a, na, own, &s)) return numba_failed(&x, &t, &g, &l, gobj, lobj);
    } else {
        PyThreadState *ts = n >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        if (k == K_BCE)
            s = x.dt == 0 ? ((bce32_fn)kern[k][0])(gb, lb, x.v.buf, t.v.buf, NULL, n, red)
                          : ((bce64_fn)kern[k][1])(gb, lb, x.v.buf, t.v.buf, NULL, n, red);
        else if (k == K_BCE_LOGITS)
            s = x.dt == 0 ? ((bcel32_fn)kern[k][0])(gb, lb, x.v.buf, t.v.buf, NULL, NULL, n, c, red)
                          : ((bcel64_fn)kern[k][1])(gb, lb, x.v.buf, t.v.buf, NULL, NULL, n, c, red);
        else
            s = x.dt == 0 ? ((hinge32_fn)kern[k][0])(gb, lb, x.v.buf, t.v.buf, NULL, n, (float)margin, red)
                          : ((hinge64_fn)kern[k][1])(gb, lb, x.v.buf, t.v.buf, NULL, n, margin, red);
        if (ts) PyEval_RestoreThread(ts);
    }
    const int dt = x.dt;
    release(&x);
    release(&t);
    release(&g);
    release(&l);
    if (mode == NONE) return none_result(lobj, gobj);
    return loss_result(dt, s, gobj);
}

/* ------------------------------------------------------------------ optimizers */

/* param (writeable), grad (read) and nstate state arrays (writeable), all one dtype and
 * shape, no two overlapping.  On success every buffer in a[0..count) is held. */
static int opt_arrays(PyObject *const *objs, int count, arr_t *a)
{
    for (int i = 0; i < count; i++) {
        if (!get(objs[i], &a[i], i != 1, 0) ||
            (i > 0 && (a[i].dt != a[0].dt || !same_shape(&a[i], &a[0])))) {
            for (int j = 0; j <= i; j++) release(&a[j]);
            return 0;
        }
        for (int j = 0; j < i; j++)
            if (overlap(&a[i], &a[j])) {
                for (int m = 0; m <= i; m++) release(&a[m]);
                return 0;
            }
    }
    return 1;
}

static void release_all(arr_t *a, int count)
{
    for (int i = 0; i < count; i++) release(&a[i]);
}

/* An optimizer's Numba route: the Numba backend's function for kernel k on args (its
 * arguments in its own order), the count checked arrays a released; param (a new
 * reference), or NULL with the Python error its call raised. */
static PyObject *numba_update(int k, PyObject *const *args, size_t nargs, arr_t *a, int count, PyObject *param)
{
    PyObject *res = call_numba(k, args, nargs);
    release_all(a, count);
    if (!res) return NULL;
    Py_DECREF(res);
    Py_INCREF(param);
    return param;
}

typedef void (*sgd32_fn)(float *, float *, const float *, int64_t, int64_t, float, float, float, float, float, int, int);
typedef void (*sgd64_fn)(double *, double *, const double *, int64_t, int64_t, double, double, double, double, double, int, int);

/* sgd(param, grad, momentum_buffer, step, lr, momentum, dampening, nesterov, weight_decay,
 *     maximize, grad_scale, backend) -> param */
static PyObject *sgd(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    const int r = nargs == 12 ? route(args[11], K_SGD) : ROUTE_NONE;
    if (!r) NOT_MINE;
    int64_t step;
    double lr, mom, damp, wd, gs;
    int nesterov, maximize;
    if (!pyint(args[3], &step) || step < 1 || !pyfloat(args[4], &lr) || !(lr >= 0.0) ||
        !pyfloat(args[5], &mom) || !(mom >= 0.0) || !pyfloat(args[6], &damp) || !isfinite(damp) ||
        !pybool(args[7], &nesterov) || !pyfloat(args[8], &wd) || !(wd >= 0.0) ||
        !pybool(args[9], &maximize) || !pyfloat(args[10], &gs) || !isfinite(gs) ||
        (nesterov && !(mom > 0.0 && damp == 0.0)))
        NOT_MINE;
    arr_t a[3] = {0};
    const int count = mom != 0.0 ? 3 : 2;
    if (!opt_arrays(args, count, a)) NOT_MINE;
    if (r == ROUTE_NUMBA) {
        /* backend.numba.sgd(param, momentum_buffer, grad, step, lr, momentum, dampening,
         *                   weight_decay, grad_scale, nesterov, maximize) */
        PyObject *c[11] = {args[0], args[2], args[1], args[3], args[4], args[5], args[6], args[8], args[10],
                           args[7], args[9]};
        return numba_update(K_SGD, c, 11, a, count, args[0]);
    }
    PyThreadState *ts = a[0].n >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
    void *buf = count == 3 ? a[2].v.buf : NULL;
    if (a[0].dt == 0)
        ((sgd32_fn)kern[K_SGD][0])(a[0].v.buf, buf, a[1].v.buf, a[0].n, step, (float)lr, (float)mom,
                                   (float)damp, (float)wd, (float)gs, nesterov, maximize);
    else
        ((sgd64_fn)kern[K_SGD][1])(a[0].v.buf, buf, a[1].v.buf, a[0].n, step, lr, mom, damp, wd, gs,
                                   nesterov, maximize);
    if (ts) PyEval_RestoreThread(ts);
    release_all(a, count);
    Py_INCREF(args[0]);
    return args[0];
}

typedef void (*adam32_fn)(float *, float *, float *, float *, const float *, int64_t, int64_t, double,
                          double, double, double, double, double, int, int, int);
typedef void (*adam64_fn)(double *, double *, double *, double *, const double *, int64_t, int64_t, double,
                          double, double, double, double, double, int, int, int);

/* adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
 *      weight_decay, decoupled_weight_decay, amsgrad, maximize, grad_scale, backend) -> param */
static PyObject *adam(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    const int r = nargs == 16 ? route(args[15], K_ADAM) : ROUTE_NONE;
    if (!r) NOT_MINE;
    int64_t step;
    double lr, b1, b2, eps, wd, gs;
    int decoupled, amsgrad, maximize;
    if (!pyint(args[5], &step) || step < 1 || !pyfloat(args[6], &lr) || !(lr >= 0.0) ||
        !pyfloat(args[7], &b1) || !(b1 >= 0.0 && b1 < 1.0) || !pyfloat(args[8], &b2) ||
        !(b2 >= 0.0 && b2 < 1.0) || !pyfloat(args[9], &eps) || !(eps >= 0.0) ||
        !pyfloat(args[10], &wd) || !(wd >= 0.0) || !pybool(args[11], &decoupled) ||
        !pybool(args[12], &amsgrad) || !pybool(args[13], &maximize) || !pyfloat(args[14], &gs) ||
        !isfinite(gs))
        NOT_MINE;
    arr_t a[5] = {0};
    const int count = amsgrad ? 5 : 4;
    if (!opt_arrays(args, count, a)) NOT_MINE;
    if (r == ROUTE_NUMBA) {
        /* backend.numba.adam(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, step, lr, beta1,
         *                    beta2, eps, weight_decay, grad_scale, decoupled_weight_decay,
         *                    amsgrad, maximize) */
        PyObject *c[15] = {args[0], args[2], args[3], args[4], args[1], args[5], args[6], args[7],
                           args[8], args[9], args[10], args[14], args[11], args[12], args[13]};
        return numba_update(K_ADAM, c, 15, a, count, args[0]);
    }
    PyThreadState *ts = a[0].n >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
    void *vmax = amsgrad ? a[4].v.buf : NULL;
    if (a[0].dt == 0)
        ((adam32_fn)kern[K_ADAM][0])(a[0].v.buf, a[2].v.buf, a[3].v.buf, vmax, a[1].v.buf, a[0].n, step, lr,
                                     b1, b2, eps, wd, gs, decoupled, amsgrad, maximize);
    else
        ((adam64_fn)kern[K_ADAM][1])(a[0].v.buf, a[2].v.buf, a[3].v.buf, vmax, a[1].v.buf, a[0].n, step, lr,
                                     b1, b2, eps, wd, gs, decoupled, amsgrad, maximize);
    if (ts) PyEval_RestoreThread(ts);
    release_all(a, count);
    Py_INCREF(args[0]);
    return args[0];
}

typedef void (*adagrad32_fn)(float *, float *, const float *, int64_t, int64_t, double, double, double,
                             double, double, int);
typedef void (*adagrad64_fn)(double *, double *, const double *, int64_t, int64_t, double, double, double,
                             double, double, int);

/* adagrad(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize,
 *         grad_scale, backend) -> param */
static PyObject *adagrad(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    const int r = nargs == 11 ? route(args[10], K_ADAGRAD) : ROUTE_NONE;
    if (!r) NOT_MINE;
    int64_t step;
    double lr, decay, wd, eps, gs;
    int maximize;
    if (!pyint(args[3], &step) || step < 1 || !pyfloat(args[4], &lr) || !(lr >= 0.0) ||
        !pyfloat(args[5], &decay) || !(decay >= 0.0) || !pyfloat(args[6], &wd) || !(wd >= 0.0) ||
        !pyfloat(args[7], &eps) || !(eps >= 0.0) || !pybool(args[8], &maximize) ||
        !pyfloat(args[9], &gs) || !isfinite(gs))
        NOT_MINE;
    arr_t a[3] = {0};
    if (!opt_arrays(args, 3, a)) NOT_MINE;
    if (r == ROUTE_NUMBA) {
        /* backend.numba.adagrad(param, state_sum, grad, step, lr, lr_decay, weight_decay, eps,
         *                       grad_scale, maximize) */
        PyObject *c[10] = {args[0], args[2], args[1], args[3], args[4], args[5], args[6], args[7],
                           args[9], args[8]};
        return numba_update(K_ADAGRAD, c, 10, a, 3, args[0]);
    }
    PyThreadState *ts = a[0].n >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
    if (a[0].dt == 0)
        ((adagrad32_fn)kern[K_ADAGRAD][0])(a[0].v.buf, a[2].v.buf, a[1].v.buf, a[0].n, step, lr, decay, wd,
                                           eps, gs, maximize);
    else
        ((adagrad64_fn)kern[K_ADAGRAD][1])(a[0].v.buf, a[2].v.buf, a[1].v.buf, a[0].n, step, lr, decay, wd,
                                           eps, gs, maximize);
    if (ts) PyEval_RestoreThread(ts);
    release_all(a, 3);
    Py_INCREF(args[0]);
    return args[0];
}

typedef void (*rmsprop32_fn)(float *, float *, float *, float *, const float *, int64_t, double, double,
                             double, double, double, double, int, int);
typedef void (*rmsprop64_fn)(double *, double *, double *, double *, const double *, int64_t, double, double,
                             double, double, double, double, int, int);

/* rmsprop(param, grad, square_avg, momentum_buffer, grad_avg, step, lr, alpha, eps,
 *         weight_decay, momentum, centered, maximize, grad_scale, backend) -> param */
static PyObject *rmsprop(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    const int r = nargs == 15 ? route(args[14], K_RMSPROP) : ROUTE_NONE;
    if (!r) NOT_MINE;
    int64_t step;
    double lr, alpha, eps, wd, mom, gs;
    int centered, maximize;
    if (!pyint(args[5], &step) || step < 1 || !pyfloat(args[6], &lr) || !(lr >= 0.0) ||
        !pyfloat(args[7], &alpha) || !(alpha >= 0.0) || !pyfloat(args[8], &eps) || !(eps >= 0.0) ||
        !pyfloat(args[9], &wd) || !(wd >= 0.0) || !pyfloat(args[10], &mom) || !(mom >= 0.0) ||
        !pybool(args[11], &centered) || !pybool(args[12], &maximize) || !pyfloat(args[13], &gs) ||
        !isfinite(gs))
        NOT_MINE;
    /* arrays in use, in order: param, grad, square_avg, [momentum_buffer], [grad_avg] */
    PyObject *objs[5] = {args[0], args[1], args[2], NULL, NULL};
    int count = 3, ib = -1, ia = -1;
    if (mom > 0.0) objs[ib = count++] = args[3];
    if (centered) objs[ia = count++] = args[4];
    arr_t a[5] = {0};
    if (!opt_arrays(objs, count, a)) NOT_MINE;
    if (r == ROUTE_NUMBA) {
        /* backend.numba.rmsprop(param, square_avg, momentum_buffer, grad_avg, grad, step, lr,
         *                       alpha, eps, weight_decay, momentum, centered, grad_scale,
         *                       maximize) */
        PyObject *c[14] = {args[0], args[2], args[3], args[4], args[1], args[5], args[6], args[7],
                           args[8], args[9], args[10], args[11], args[13], args[12]};
        return numba_update(K_RMSPROP, c, 14, a, count, args[0]);
    }
    PyThreadState *ts = a[0].n >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
    void *buf = ib > 0 ? a[ib].v.buf : NULL, *avg = ia > 0 ? a[ia].v.buf : NULL;
    if (a[0].dt == 0)
        ((rmsprop32_fn)kern[K_RMSPROP][0])(a[0].v.buf, a[2].v.buf, buf, avg, a[1].v.buf, a[0].n, lr, alpha,
                                           eps, wd, mom, gs, centered, maximize);
    else
        ((rmsprop64_fn)kern[K_RMSPROP][1])(a[0].v.buf, a[2].v.buf, buf, avg, a[1].v.buf, a[0].n, lr, alpha,
                                           eps, wd, mom, gs, centered, maximize);
    if (ts) PyEval_RestoreThread(ts);
    release_all(a, count);
    Py_INCREF(args[0]);
    return args[0];
}

/* ------------------------------------------------------------------ cross-entropy */

/* optional per-class weights: None, or a (C,) array of x's dtype that the gradient g (when
 * held) does not overlap.  1 when acceptable (w held unless None). */
static int class_weights(PyObject *o, arr_t *w, const arr_t *x, int64_t c, const arr_t *g)
{
    w->held = 0;
    if (o == Py_None) return 1;
    if (!get(o, w, 0, 0)) return 0;
    if (w->dt != x->dt || w->v.ndim != 1 || w->v.shape[0] != c || (g->held && overlap(g, w))) {
        release(w);
        return 0;
    }
    return 1;
}

typedef double (*ce32_fn)(float *, float *, const float *, const int64_t *, const float *, int64_t,
                          int64_t, int64_t, int64_t, float, int);
typedef double (*ce64_fn)(double *, double *, const double *, const int64_t *, const double *, int64_t,
                          int64_t, int64_t, int64_t, double, int);
typedef int64_t (*bad_target_fn)(const int64_t *, int64_t, int64_t, int64_t);

/* The arguments cross_entropy and multi_margin share: (N, C) logits xo (N, C >= 1), (N,)
 * int64 targets to, each in [0, C) or `ignore` (else the Python path names the bad one), the
 * gradient buffer from out when want_grad, the class weights wo.  1 when all are acceptable
 * (x, t held; g, w held when they exist; *gobj the gradient's array or NULL); else 0, with
 * nothing held (a Python error set only if an allocation failed). */
static int class_args(PyObject *xo, PyObject *to, PyObject *wo, PyObject *out, int want_grad, int64_t ignore,
                      arr_t *x, arr_t *t, arr_t *g, arr_t *w, PyObject **gobj)
{
    *gobj = NULL;
    int ok = get(xo, x, 0, 0) && x->v.ndim == 2 && x->v.shape[0] >= 1 && x->v.shape[1] >= 1 &&
             get(to, t, 0, 1) && t->v.ndim == 1 && t->v.shape[0] == x->v.shape[0];
    const int64_t n = ok ? x->v.shape[0] : 0, c = ok ? x->v.shape[1] : 0;
    if (ok) ok = ((bad_target_fn)kern[K_FIRST_BAD_TARGET][0])(t->v.buf, n, c, ignore) < 0;
    if (ok && want_grad) ok = (*gobj = grad_buffer(out, xo, x, t, g)) != NULL;
    if (ok) ok = class_weights(wo, w, x, c, g);
    if (!ok) {
        Py_CLEAR(*gobj);
        release(g);
        release(x);
        release(t);
    }
    return ok;
}

/* after a class loss's kernel: its arrays released, the result */
static PyObject *class_result(int dt, double total, PyObject *gobj, arr_t *x, arr_t *t, arr_t *g, arr_t *w)
{
    release(x);
    release(t);
    release(g);
    release(w);
    return loss_result(dt, total, gobj);
}

typedef double (*cep32_fn)(float *, float *, const float *, const float *, const float *, int64_t, int64_t,
                           int64_t, float, int);
typedef double (*cep64_fn)(double *, double *, const double *, const double *, const double *, int64_t,
                           int64_t, int64_t, double, int);

/* cross_entropy with class probabilities t (held; released here): (N, C) logits and targets of
 * one float dtype, the
 * gradient buffer (which may be the target itself, as on the Python path) and class weights
 * as for index targets; no value is checked (the Python path checks none either). */
static PyObject *cross_entropy_prob(PyObject *const *args, arr_t *tp, int r, double eps, int mode, int want_grad)
{
    arr_t x = {0}, t = *tp, g = {0}, w = {0};
    PyObject *gobj = NULL;
    int ok = get(args[0], &x, 0, 0) && x.v.ndim == 2 && x.v.shape[0] >= 1 && x.v.shape[1] >= 1 &&
             t.dt == x.dt && same_shape(&t, &x);
    if (ok && want_grad) ok = (gobj = grad_buffer(args[7], args[0], &x, &t, &g)) != NULL;
    if (ok) ok = class_weights(args[2], &w, &x, x.v.shape[1], &g);
    if (!ok) {
        Py_XDECREF(gobj);
        release(&g);
        return decline(&x, &t);
    }
    const int64_t n = x.v.shape[0], c = x.v.shape[1];
    double s;
    void *gb = g.held ? g.v.buf : NULL, *wb = w.held ? w.v.buf : NULL;
    if (r == ROUTE_NUMBA) { /* (grad, loss, logits, target, weight, n, c, s, label_smoothing, reduction) */
        PyObject *a[10] = {gobj ? gobj : Py_None, Py_None, args[0], args[1], args[2], PyLong_FromLongLong(n),
                           PyLong_FromLongLong(c), PyLong_FromLong(1), args[4], PyLong_FromLong(mode)};
        if (!numba_total(K_CROSS_ENTROPY_PROB, a, 10, 1u << 5 | 1u << 6 | 1u << 7 | 1u << 9, &s))
            return numba_failed(&x, &t, &g, &w, gobj, NULL);
    } else {
        PyThreadState *ts = n * c >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        if (x.dt == 0)
            s = ((cep32_fn)kern[K_CROSS_ENTROPY_PROB][0])(gb, NULL, x.v.buf, t.v.buf, wb, n, c, 1, (float)eps, mode);
        else
            s = ((cep64_fn)kern[K_CROSS_ENTROPY_PROB][1])(gb, NULL, x.v.buf, t.v.buf, wb, n, c, 1, eps, mode);
        if (ts) PyEval_RestoreThread(ts);
    }
    return class_result(x.dt, s, gobj, &x, &t, &g, &w);
}

/* cross_entropy(logits, target, weight, ignore_index, label_smoothing, reduction, grad, out,
 *               backend):
 * (N, C) logits, int64 class indices (N,), class weights None or (C,), "mean" or "sum",
 * every target in [0, C) or ignore_index (else the Python path names the bad one); or float
 * class probabilities of the logits' shape and dtype (cross_entropy_prob). */
static PyObject *cross_entropy(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t ignore;
    double eps;
    int mode, want_grad;
    if (nargs != 9 || !pyint(args[3], &ignore) || !pyfloat(args[4], &eps) || !(eps >= 0.0 && eps <= 1.0) ||
        !(mode = reduction_mode(args[5])) || mode == NONE || !pybool(args[6], &want_grad) ||
        (!want_grad && args[7] != Py_None))
        NOT_MINE;
    arr_t x = {0}, t = {0}, g = {0}, w = {0};
    if (get(args[1], &t, 0, 0)) { /* a float target: class probabilities (no ignore_index) */
        const int rp = ignore == -100 ? route(args[8], K_CROSS_ENTROPY_PROB) : ROUTE_NONE;
        if (!rp) return decline(&x, &t);
        return cross_entropy_prob(args, &t, rp, eps, mode, want_grad);
    }
    const int r = route(args[8], K_CROSS_ENTROPY);
    if (!r) NOT_MINE;
    PyObject *gobj;
    if (!class_args(args[0], args[1], args[2], args[7], want_grad, ignore, &x, &t, &g, &w, &gobj))
        return decline(&x, &t);
    const int64_t n = x.v.shape[0], c = x.v.shape[1];
    double s;
    void *gb = g.held ? g.v.buf : NULL, *wb = w.held ? w.v.buf : NULL;
    if (r == ROUTE_NUMBA) { /* (grad, loss, logits, target, weight, n, c, s, ignore_index, label_smoothing, reduction) */
        PyObject *a[11] = {gobj ? gobj : Py_None, Py_None, args[0], args[1], args[2], PyLong_FromLongLong(n),
                           PyLong_FromLongLong(c), PyLong_FromLong(1), args[3], args[4], PyLong_FromLong(mode)};
        if (!numba_total(K_CROSS_ENTROPY, a, 11, 1u << 5 | 1u << 6 | 1u << 7 | 1u << 10, &s))
            return numba_failed(&x, &t, &g, &w, gobj, NULL);
    } else {
        PyThreadState *ts = n * c >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        if (x.dt == 0)
            s = ((ce32_fn)kern[K_CROSS_ENTROPY][0])(gb, NULL, x.v.buf, t.v.buf, wb, n, c, 1, ignore, (float)eps, mode);
        else
            s = ((ce64_fn)kern[K_CROSS_ENTROPY][1])(gb, NULL, x.v.buf, t.v.buf, wb, n, c, 1, ignore, eps, mode);
        if (ts) PyEval_RestoreThread(ts);
    }
    return class_result(x.dt, s, gobj, &x, &t, &g, &w);
}

typedef double (*mm32_fn)(float *, float *, const float *, const int64_t *, const float *, int64_t, int64_t,
                          int, float, int);
typedef double (*mm64_fn)(double *, double *, const double *, const int64_t *, const double *, int64_t,
                          int64_t, int, double, int);

/* multi_margin(logits, target, p, margin, weight, reduction, grad, out, backend): (N, C)
 * logits, int64 class indices (N,) all in [0, C), p the int 1 or 2, margin a finite float,
 * class weights None or (C,), "mean" or "sum". */
static PyObject *multi_margin(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    const int r = nargs == 9 ? route(args[8], K_MULTI_MARGIN) : ROUTE_NONE;
    if (!r) NOT_MINE;
    int64_t p;
    double margin;
    int mode, want_grad;
    if (!pyint(args[2], &p) || (p != 1 && p != 2) || !pyfloat(args[3], &margin) || !isfinite(margin) ||
        !(mode = reduction_mode(args[5])) || mode == NONE || !pybool(args[6], &want_grad) ||
        (!want_grad && args[7] != Py_None))
        NOT_MINE;
    arr_t x = {0}, t = {0}, g = {0}, w = {0};
    PyObject *gobj; /* ignore_index 0: a valid class, so the targets get the range test alone */
    if (!class_args(args[0], args[1], args[4], args[7], want_grad, 0, &x, &t, &g, &w, &gobj))
        return decline(&x, &t);
    const int64_t n = x.v.shape[0], c = x.v.shape[1];
    double s;
    void *gb = g.held ? g.v.buf : NULL, *wb = w.held ? w.v.buf : NULL;
    if (r == ROUTE_NUMBA) { /* (grad, loss, logits, target, weight, n, c, p, margin, reduction) */
        PyObject *a[10] = {gobj ? gobj : Py_None, Py_None, args[0], args[1], args[4], PyLong_FromLongLong(n),
                           PyLong_FromLongLong(c), args[2], args[3], PyLong_FromLong(mode)};
        if (!numba_total(K_MULTI_MARGIN, a, 10, 1u << 5 | 1u << 6 | 1u << 9, &s))
            return numba_failed(&x, &t, &g, &w, gobj, NULL);
    } else {
        PyThreadState *ts = n * c >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
        if (x.dt == 0)
            s = ((mm32_fn)kern[K_MULTI_MARGIN][0])(gb, NULL, x.v.buf, t.v.buf, wb, n, c, (int)p, (float)margin, mode);
        else
            s = ((mm64_fn)kern[K_MULTI_MARGIN][1])(gb, NULL, x.v.buf, t.v.buf, wb, n, c, (int)p, margin, mode);
        if (ts) PyEval_RestoreThread(ts);
    }
    return class_result(x.dt, s, gobj, &x, &t, &g, &w);
}

/* ------------------------------------------------------------------ recorded arrays */

/* first_unfit(arrays, dtypes, shapes): the index of the first of `arrays` (a list; None
 * entries are skipped) that is no longer a C-contiguous, aligned, writeable ndarray of the
 * dtype and the shape (a tuple of ints) at the same index of `dtypes` and `shapes`, or -1.
 * The stateful optimizers' per-step test that the state arrays they verified and recorded
 * were not made read-only, retyped or reshaped in place since (the same test in Python,
 * flags, dtype and shape read per array, cost ~0.1 us an array). */
static PyObject *first_unfit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1]) || !PyList_CheckExact(args[2]) ||
        PyList_GET_SIZE(args[0]) != PyList_GET_SIZE(args[1]) || PyList_GET_SIZE(args[0]) != PyList_GET_SIZE(args[2])) {
        PyErr_SetString(PyExc_TypeError, "first_unfit(arrays, dtypes, shapes): three lists of one length");
        return NULL;
    }
    const Py_ssize_t n = PyList_GET_SIZE(args[0]);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyList_GET_ITEM(args[0], i);
        if (o == Py_None) continue;
        if (!PyArray_Check(o)) return PyLong_FromSsize_t(i);
        PyArrayObject *a = (PyArrayObject *)o;
        PyArray_Descr *d = (PyArray_Descr *)PyList_GET_ITEM(args[1], i);
        PyObject *sh = PyList_GET_ITEM(args[2], i);
        if (!PyArray_ISCARRAY(a) ||
            (PyArray_DESCR(a) != d && (!PyArray_DescrCheck(d) || !PyArray_EquivTypes(PyArray_DESCR(a), d))) ||
            !PyTuple_CheckExact(sh) || PyTuple_GET_SIZE(sh) != PyArray_NDIM(a))
            return PyLong_FromSsize_t(i);
        const npy_intp *dims = PyArray_DIMS(a);
        for (int k = 0; k < PyArray_NDIM(a); k++) {
            const Py_ssize_t e = PyLong_AsSsize_t(PyTuple_GET_ITEM(sh, k));
            if (e == -1 && PyErr_Occurred()) return NULL;
            if (e != (Py_ssize_t)dims[k]) return PyLong_FromSsize_t(i);
        }
    }
    return PyLong_FromLong(-1);
}

/* ------------------------------------------------------------------ binding */

/* bind(name, address_f32, address_f64): a kernel's addresses (fastloss/_fast.py) */
static PyObject *bind(PyObject *self, PyObject *args)
{
    (void)self;
    const char *name;
    unsigned long long a32, a64;
    if (!PyArg_ParseTuple(args, "sKK", &name, &a32, &a64)) return NULL;
    for (int k = 0; k < K_COUNT; k++)
        if (!strcmp(name, kernel_names[k])) {
            kern[k][0] = (void *)(uintptr_t)a32;
            kern[k][1] = (void *)(uintptr_t)a64;
            Py_RETURN_NONE;
        }
    PyErr_Format(PyExc_ValueError, "bind: unknown kernel %s", name);
    return NULL;
}

/* bind_py(name, function): the Numba backend's function for a kernel (fastloss/_fast.py) */
static PyObject *bind_py(PyObject *self, PyObject *args)
{
    (void)self;
    const char *name;
    PyObject *fn;
    if (!PyArg_ParseTuple(args, "sO", &name, &fn)) return NULL;
    for (int k = 0; k < K_COUNT; k++)
        if (!strcmp(name, kernel_names[k])) {
            Py_INCREF(fn);
            Py_XSETREF(pyk[k], fn);
            Py_RETURN_NONE;
        }
    PyErr_Format(PyExc_ValueError, "bind_py: unknown kernel %s", name);
    return NULL;
}

/* enable(default, named): the route of backend=None (0 off, 1 C, 2 Numba: the default
 * backend's) and whether backend="c" / "numba" take the fast path */
static PyObject *enable(PyObject *self, PyObject *args)
{
    (void)self;
    int on[2];
    if (!PyArg_ParseTuple(args, "ip", &on[0], &on[1])) return NULL;
    if (on[0] < ROUTE_NONE || on[0] > ROUTE_NUMBA) {
        PyErr_SetString(PyExc_ValueError, "enable: default route must be 0, 1 or 2");
        return NULL;
    }
    if (on[0] || on[1]) {
        for (int k = 0; k < K_COUNT; k++)
            if (!kern[k][0] || !kern[k][1]) {
                PyErr_Format(PyExc_RuntimeError, "enable: kernel %s is not bound", kernel_names[k]);
                return NULL;
            }
    }
    on_default = on[0];
    on_named = on[1];
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"ew", (PyCFunction)(void (*)(void))ew, METH_FASTCALL, "elementwise regression loss fast path"},
    {"sgd", (PyCFunction)(void (*)(void))sgd, METH_FASTCALL, "sgd_ fast path"},
    {"adam", (PyCFunction)(void (*)(void))adam, METH_FASTCALL, "adam_/adamw_ fast path"},
    {"adagrad", (PyCFunction)(void (*)(void))adagrad, METH_FASTCALL, "adagrad_ fast path"},
    {"rmsprop", (PyCFunction)(void (*)(void))rmsprop, METH_FASTCALL, "rmsprop_ fast path"},
    {"cross_entropy", (PyCFunction)(void (*)(void))cross_entropy, METH_FASTCALL, "cross_entropy fast path"},
    {"binary", (PyCFunction)(void (*)(void))binary, METH_FASTCALL, "BCE, BCE with logits, hinge fast path"},
    {"multi_margin", (PyCFunction)(void (*)(void))multi_margin, METH_FASTCALL, "multi_margin fast path"},
    {"first_unfit", (PyCFunction)(void (*)(void))first_unfit, METH_FASTCALL,
     "first_unfit(arrays, dtypes, shapes): index of the first array no longer fit to be written, or -1"},
    {"bind", bind, METH_VARARGS, "bind(name, address_f32, address_f64)"},
    {"bind_py", bind_py, METH_VARARGS, "bind_py(name, function)"},
    {"enable", enable, METH_VARARGS, "enable(default, named)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "fastloss._entry",
    "The public functions' fast path in C (csrc/pyentry/entry.c); see fastloss/_fast.py.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__entry(void)
{
    import_array();
    descr[0] = PyArray_DescrFromType(NPY_FLOAT);
    descr[1] = PyArray_DescrFromType(NPY_DOUBLE);
    if (!descr[0] || !descr[1]) return NULL;
    return PyModule_Create(&module);
}
