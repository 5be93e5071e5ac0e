"""Validation: the one layer that checks what callers pass.  Kernels never validate.

Every check runs before any buffer is written, and every error names the argument and
what was wrong with it.  The common case (C-contiguous float32/float64 ndarrays) takes a
short path: a few attribute reads and dictionary look-ups.
"""
import math
import numbers

import numpy as np

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
_ndarray = np.ndarray

REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}

# (pred dtype, target dtype) -> computation dtype
_compute_cache = {}


def _kind_dtype(dt, name):
    """float32 for float16/float32, float64 for float64 and every integer/bool dtype."""
    k = dt.kind
    if k == "f":
        if dt.itemsize <= 4:
            return F32
        if dt.itemsize == 8:
            return F64
        raise TypeError(f"{name}: dtype {dt} is not supported (float16/32/64, integer or bool)")
    if k in "iub":
        return F64
    raise TypeError(f"{name}: dtype {dt} is not numeric real (float16/32/64, integer or bool expected)")


def compute_dtype(dp, dt, pname="pred", tname="target"):
    """The computation dtype of a loss: float64 if either input is float64 or not floating
    (ints and bools promote to float64), float32 otherwise (float16 computes in float32)."""
    key = (dp, dt)
    r = _compute_cache.get(key)
    if r is None:
        a = _kind_dtype(dp, pname)
        b = _kind_dtype(dt, tname)
        r = F64 if (a is F64 or b is F64) else F32
        _compute_cache[key] = r
    return r


def as_input(x, dtype):
    """x as a C-contiguous array of dtype: the same object when it already is one (never
    written), else a converted copy (the caller's object is never modified)."""
    if type(x) is _ndarray and x.dtype is dtype and (f := x.flags).c_contiguous and f.aligned:
        return x
    a = np.ascontiguousarray(x, dtype=dtype)
    # ascontiguousarray keeps an array that starts off its element size (np.memmap(offset=4),
    # a view into a byte buffer): the kernels' loads assume alignment, so that one is copied
    return a if a.flags.aligned else a.copy()


def subclass(x, name):
    """x, an instance of an ndarray subclass (type(x) is not ndarray): accepted only when it is
    an np.memmap (an ndarray over a file mapping, read and written as one by every backend);
    any other subclass is a TypeError.  A MaskedArray's mask, or np.matrix's 2-D-only
    reshaping, would be silently ignored or break the kernels' flat indexing; the caller
    chooses ``x.view(numpy.ndarray)`` (the same memory) or ``x.filled(...)`` explicitly."""
    t = type(x)
    if t is np.memmap:
        return x
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(f"{name}: numpy.ma.MaskedArray is not supported (its mask would be ignored); "
                        f"pass x.filled(value) or x.view(numpy.ndarray) explicitly")
    raise TypeError(f"{name}: ndarray subclass {t.__module__}.{t.__qualname__} is not supported; "
                    f"pass x.view(numpy.ndarray) (the same memory, no copy)")


def asarray(x, name):
    if type(x) is _ndarray:
        return x
    if isinstance(x, _ndarray):
        return np.asarray(subclass(x, name))  # an np.memmap: its base-class view, no copy
    try:
        return np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name}: cannot be read as an array ({e})") from None


def loss_pair(pred, target):
    """(pred, target, dtype) ready for an elementwise kernel: same shape (no broadcasting),
    the computation dtype, C-contiguous."""
    if type(pred) is _ndarray and type(target) is _ndarray:
        # fast path: two C-contiguous arrays of one float dtype need no conversion
        dt = pred.dtype
        if ((dt is F32 or dt is F64) and target.dtype is dt and pred.shape == target.shape
                and (f := pred.flags).c_contiguous and f.aligned
                and (f := target.flags).c_contiguous and f.aligned):
            return pred, target, dt
    p = asarray(pred, "pred")
    t = asarray(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape (no broadcasting): "
                         f"pred {p.shape} vs target {t.shape}")
    dt = compute_dtype(p.dtype, t.dtype)
    return as_input(p, dt), as_input(t, dt), dt


def reduction_mode(reduction):
    try:
        return REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise ValueError(f"reduction: must be 'mean', 'sum' or 'none', got {reduction!r}") from None


def _flag(x, name):
    if x is True or x is False:
        return x
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    raise TypeError(f"{name}: must be a bool, got {type(x).__name__}")


def flag(x, name):
    return x if (x is True or x is False) else _flag(x, name)


def out_array(out, shape, dtype, name="out", inputs=()):
    """Validate a caller's gradient buffer: ndarray of the computation dtype (TypeError),
    the input's shape, C-contiguous and writeable (ValueError).  It may be one of the inputs
    (same memory, same layout), but must not partially overlap one."""
    if type(out) is not _ndarray:
        if not isinstance(out, _ndarray):
            raise TypeError(f"{name}: must be a numpy.ndarray, got {type(out).__name__}")
        subclass(out, name)
    if out.dtype is not dtype and out.dtype != dtype:
        raise TypeError(f"{name}: dtype must be {dtype} (the computation dtype), got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{name}: shape must be {shape}, got {out.shape}")
    flags = out.flags
    if not flags.c_contiguous:
        raise ValueError(f"{name}: must be C-contiguous (it is written in place, never copied)")
    if not flags.aligned:
        raise ValueError(_misaligned(name, out))
    if not flags.writeable:
        raise ValueError(f"{name}: is read-only")
    for a, aname in inputs:
        if out is a or (out.base is None and a.base is None):
            continue  # the same array, or two arrays that each own their memory
        if np.may_share_memory(out, a) and not same_memory(out, a):
            raise ValueError(f"{name}: partially overlaps {aname}; it may be {aname} itself, not a shifted view of it")
    return out


def same_memory(a, b):
    """a and b are the same array: the same start, dtype, shape and strides.  A view that
    reads b's bytes as another dtype or shape (a float out= over an int64 target) is not:
    the kernel would write elements it has not read yet."""
    return (a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def real(x, name):
    """A hyperparameter as a Python float (TypeError for anything that is not a real number)."""
    t = type(x)
    if t is float:
        return x
    if not (t is int or not isinstance(x, (bool, np.bool_)) and isinstance(x, (numbers.Real, np.floating,
                                                                               np.integer))):
        raise TypeError(f"{name}: must be a real number, got {type(x).__name__}")
    try:
        return float(x)
    except OverflowError:  # an int past float's range: an error, not a silent inf
        raise ValueError(f"{name}: an integer of {int(x).bit_length()} bits is too large for a float "
                         "(|x| must be below 1.8e308)") from None


def nonneg(x, name):
    v = x if type(x) is float else real(x, name)
    if not v >= 0.0:  # also rejects NaN
        raise ValueError(f"{name}: must be >= 0, got {x!r}")
    return v


def positive(x, name):
    v = real(x, name)
    if not v > 0.0:
        raise ValueError(f"{name}: must be > 0, got {x!r}")
    return v


def finite(x, name):
    v = x if type(x) is float else real(x, name)
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {x!r}")
    return v


def closed_unit(x, name):
    v = real(x, name)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}: must be in [0, 1], got {x!r}")
    return v


INT64_MAX = 2**63 - 1


def int64(x, name):
    """An integer argument the kernels take as int64: a Python int (TypeError for anything
    that is not an integer, bools included; ValueError outside [-2**63, 2**63 - 1])."""
    if type(x) is not int:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Integral, np.integer)):
            raise TypeError(f"{name}: must be an int, got {type(x).__name__}")
        x = int(x)
    if not -INT64_MAX - 1 <= x <= INT64_MAX:
        raise ValueError(f"{name}: must fit in int64 ([-2**63, 2**63 - 1]), got {x}")
    return x


def step_count(step):
    """A functional kernel's ``step=``: an int in [1, 2**63 - 1] (the kernels count in int64)."""
    if type(step) is int and 1 <= step <= INT64_MAX:
        return step
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (numbers.Integral, np.integer)):
        raise TypeError(f"step: must be an int (the 1-based count of this update), got {type(step).__name__}")
    step = int(step)
    if step < 1:
        raise ValueError(f"step: must be >= 1 (the 1-based count of this update), got {step}")
    if step > INT64_MAX:
        raise ValueError(f"step: must be <= 2**63 - 1 (the kernels count steps in int64), got {step}")
    return step


def inplace(a, name):
    """An array updated in place: a float32/float64 ndarray, C-contiguous and writeable.
    Never copied: a non-contiguous or read-only array is an error, not a silent copy."""
    if type(a) is not _ndarray:
        if not isinstance(a, _ndarray):
            raise TypeError(f"{name}: must be a numpy.ndarray (it is updated in place), "
                            f"got {type(a).__name__}")
        subclass(a, name)
    dt = a.dtype
    if dt is not F32 and dt is not F64 and dt != F32 and dt != F64:
        raise TypeError(f"{name}: dtype must be float32 or float64, got {dt}")
    flags = a.flags
    if not flags.c_contiguous:
        raise ValueError(f"{name}: must be C-contiguous (it is updated in place, never copied)")
    if not flags.aligned:
        raise ValueError(_misaligned(name, a))
    if not flags.writeable:
        raise ValueError(f"{name}: is read-only (it is updated in place)")
    return a


def _misaligned(name, a):
    return (f"{name}: its data does not start on a multiple of its {a.dtype.itemsize}-byte elements "
            f"(a view at a byte offset?); the kernels need aligned elements and it is never copied")


def like(a, name, ref, ref_name, writeable=True):
    """An array of ref's shape and dtype (ref already validated)."""
    if type(a) is not _ndarray:
        if not isinstance(a, _ndarray):
            raise TypeError(f"{name}: must be a numpy.ndarray, got {type(a).__name__}")
        subclass(a, name)
    if a.dtype != ref.dtype:
        raise TypeError(f"{name}: dtype must be {ref_name}'s dtype {ref.dtype}, got {a.dtype}")
    if a.shape != ref.shape:
        raise ValueError(f"{name}: shape must be {ref_name}'s shape {ref.shape}, got {a.shape}")
    flags = a.flags
    if not flags.c_contiguous:
        raise ValueError(f"{name}: must be C-contiguous (never copied)")
    if not flags.aligned:
        raise ValueError(_misaligned(name, a))
    if writeable and not flags.writeable:
        raise ValueError(f"{name}: is read-only (it is updated in place)")
    return a


def disjoint(arrays):
    """Arrays a kernel reads and writes in one pass must not share memory."""
    for i in range(len(arrays)):
        a, an = arrays[i]
        for j in range(i + 1, len(arrays)):
            b, bn = arrays[j]
            if a is not b and a.base is None and b.base is None:
                continue  # two arrays that each own their memory
            if np.may_share_memory(a, b):
                raise ValueError(f"{an} and {bn} share memory; they must be distinct buffers")


# ---- element checks (C loops when the extension is built, NumPy otherwise) -------------------
try:
    from ._fastloss_c import ffi as _ffi, lib as _lib
    _PI64, _P32, _P64 = _ffi.typeof("int64_t[]"), _ffi.typeof("float[]"), _ffi.typeof("double[]")
except ImportError:  # numba/numpy-only installation
    _lib = None


def first_bad_target(t, c, ignore_index):
    """Index of the first class index outside [0, c) that is not ignore_index (None: no
    ignore_index), or -1.  t: C-contiguous int64."""
    if _lib is not None:
        # ignore_index=None -> 0: a valid class, so the C check reduces to the range test
        ign = 0 if ignore_index is None else ignore_index
        return int(_lib.fl_first_bad_target(_ffi.from_buffer(_PI64, t), t.size, c, ign))
    flat = t.reshape(-1)
    bad = (flat < 0) | (flat >= c)
    if ignore_index is not None:
        bad &= flat != ignore_index
    idx = np.flatnonzero(bad)
    return int(idx[0]) if idx.size else -1


def first_outside(x, lo, hi):
    """Index of the first element not in [lo, hi] (NaN is outside), or -1."""
    if _lib is not None:
        if x.dtype == F32:
            return int(_lib.fl_first_outside_f32(_ffi.from_buffer(_P32, x), x.size, lo, hi))
        return int(_lib.fl_first_outside_f64(_ffi.from_buffer(_P64, x), x.size, lo, hi))
    flat = x.reshape(-1)
    idx = np.flatnonzero(~((flat >= lo) & (flat <= hi)))
    return int(idx[0]) if idx.size else -1


def first_not_sign(x):
    """Index of the first element that is neither -1 nor +1, or -1."""
    if _lib is not None:
        if x.dtype == F32:
            return int(_lib.fl_first_not_sign_f32(_ffi.from_buffer(_P32, x), x.size))
        return int(_lib.fl_first_not_sign_f64(_ffi.from_buffer(_P64, x), x.size))
    flat = x.reshape(-1)
    idx = np.flatnonzero((flat != 1) & (flat != -1))
    return int(idx[0]) if idx.size else -1
