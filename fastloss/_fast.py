"""The C fast path of the public functions (csrc/pyentry/entry.c), bound to the C kernels.

``entry.<name>(..., backend)`` takes a public function's arguments and returns its result
when they are the common valid case, else ``NotImplemented`` (nothing touched): the caller
then runs its checked Python path.  It serves backend="c", and backend=None while the
default backend is "c" (refresh() is called by set_backend); with no C extension, ``entry``
is a stand-in that always declines.  ``checked_only()`` turns it off (tests compare the two
paths).
"""
import contextlib

import numpy as np

from . import _config


class _Declines:
    """Stand-in when the C extension is not built: every fast path declines."""

    @staticmethod
    def _no(*args):
        return NotImplemented

    ew = binary = multi_margin = sgd = adam = adagrad = rmsprop = cross_entropy = _no

    @staticmethod
    def first_unfit(arrays, dtypes, shapes):  # entry.c's test, in Python
        for i, (a, d, s) in enumerate(zip(arrays, dtypes, shapes)):
            if a is not None and not (isinstance(a, np.ndarray) and a.flags.carray and a.dtype == d
                                      and a.shape == s):
                return i
        return -1

    @staticmethod
    def enable(default, named):
        pass

    @staticmethod
    def bind_py(name, fn):
        pass


def _no_lib_threads(n):
    pass


# the kernels the fast path calls: entry.c's name -> (float32 symbol, float64 symbol)
_KERNELS = {name: (f"fl_{name}_f32", f"fl_{name}_f64")
            for name in ("mse", "smooth_l2", "mae", "huber", "smooth_l1", "sgd", "adam", "adagrad",
                         "rmsprop", "cross_entropy", "binary_cross_entropy",
                         "binary_cross_entropy_with_logits", "hinge", "squared_hinge", "first_outside",
                         "first_not_sign", "multi_margin", "cross_entropy_prob")}
_KERNELS["first_bad_target"] = ("fl_first_bad_target", "fl_first_bad_target")


def _load():
    """(entry, set_threads): the bound entry module and the C library's thread setter (the
    fast path calls the C kernels without importing the "c" backend module, so
    _config.set_num_threads reaches the library through here)."""
    try:
        from . import _entry
        from ._fastloss_c import ffi, lib
    except ImportError:
        return _Declines(), _no_lib_threads
    for name, syms in _KERNELS.items():
        _entry.bind(name, *(int(ffi.cast("uintptr_t", ffi.addressof(lib, s))) for s in syms))
    lib.fl_set_num_threads(_config.get_num_threads())
    return _entry, lib.fl_set_num_threads


entry, set_num_threads = _load()


# the Numba backend's functions the fast path calls: entry.c's name -> the module's name
_NUMBA = {k: k for k in ("mse", "smooth_l2", "mae", "huber", "smooth_l1", "sgd", "adam", "adagrad",
                         "rmsprop", "cross_entropy", "cross_entropy_prob", "binary_cross_entropy",
                         "binary_cross_entropy_with_logits", "hinge", "squared_hinge", "multi_margin")}
_ROUTE = {"c": 1, "numba": 2}


def bind_backend(name, mod):
    """Called by _config.module when a backend module is first imported: the Numba backend's
    losses and optimizers then take the fast path's checks too."""
    if name == "numba":
        for kname, fname in _NUMBA.items():
            entry.bind_py(kname, getattr(mod, fname))


def refresh():
    """Fast path on for backend="c"/"numba" by name, and for backend=None with the default
    backend's route (an invalid $FASTLOSS_BACKEND: off, so that the checked path reports it)."""
    try:
        route = _ROUTE.get(_config.get_backend(), 0)
    except ValueError:
        route = 0
    entry.enable(route, True)


@contextlib.contextmanager
def checked_only():
    """Within the block every call runs the checked Python path (not thread-safe: tests)."""
    entry.enable(False, False)
    try:
        yield
    finally:
        refresh()


refresh()
