"""FlatParams: many parameters (and their gradients) as views into two contiguous blocks.

An optimizer built over a FlatParams keeps its state in flat blocks of the same layout and
updates every parameter with one kernel call per step; clip_grad_norm reads its gradient
block in one call.  Elementwise optimizer kernels compute each element from that element
alone, so a flat update equals updating the same arrays one by one, bit for bit.
"""
import copy
import math
import numbers

import numpy as np

from . import _validate as V

ALIGN = 64  # bytes: a cache line, and one AVX-512 vector


def aligned_empty(n, dtype):
    """An uninitialized 1-D array of n elements whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.empty(n * dtype.itemsize + ALIGN, np.uint8)
    off = (-raw.ctypes.data) % ALIGN
    return raw[off:off + n * dtype.itemsize].view(dtype)


def aligned_zeros(n, dtype):
    a = aligned_empty(n, dtype)
    a[...] = 0
    return a


def _shape(s, i):
    if isinstance(s, (numbers.Integral, np.integer)) and not isinstance(s, (bool, np.bool_)):
        s = (s,)
    try:
        s = tuple(s)
    except TypeError:
        raise TypeError(f"shapes[{i}]: must be an int or a tuple of ints, got {type(s).__name__}") from None
    for d in s:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (numbers.Integral, np.integer)):
            raise TypeError(f"shapes[{i}]: must be a tuple of ints, got {s!r}")
        if d < 0:
            raise ValueError(f"shapes[{i}]: dimensions must be >= 0, got {s!r}")
    return tuple(int(d) for d in s)


def _dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: not a numpy dtype: {dtype!r}") from None
    if dt != V.F32 and dt != V.F64:
        raise TypeError(f"dtype: must be float32 or float64, got {dt}")
    return V.F32 if dt == V.F32 else V.F64


class FlatParams:
    """Parameters of the given shapes, all views into one contiguous 64-byte-aligned block
    (``data``), and their gradients, views into a second one (``grad``).

    Args:
      shapes: a sequence of shapes (tuples of ints, or ints for 1-D parameters).
      dtype: float32 (default) or float64.

    Attributes:
      params, grads: lists of views, one per shape, into ``data`` and ``grad``.  Write into
        them (``flat.params[0][...] = w``) rather than rebinding them.
      data, grad: the two 1-D blocks of ``size`` elements, parameters in order.
      shapes, offsets, sizes, dtype, size.

    Parameters and gradients start at zero; :meth:`from_arrays` copies initial values in.

    Copies: ``copy.deepcopy`` and pickle give an independent FlatParams with new 64-byte-
    aligned blocks of the same values and its own views of them (with an optimizer built over
    it, copy both together: see :mod:`fastloss.optim`).  In the same deepcopy, a reference to
    one of its blocks or views met after the FlatParams becomes the copy's (one met before it,
    and any in a pickle, is copied as an array of its own).  ``copy.copy`` gives a second
    FlatParams over the same two blocks, as copying a list of arrays shares the arrays:
    writing through either changes both.
    """

    def __init__(self, shapes, dtype=np.float32):
        if isinstance(shapes, (np.ndarray, str)) or not hasattr(shapes, "__iter__"):
            raise TypeError(f"shapes: must be a sequence of shapes, got {type(shapes).__name__}")
        shapes = [_shape(s, i) for i, s in enumerate(shapes)]
        self.dtype = _dtype(dtype)
        self.shapes = shapes
        self.sizes = [math.prod(s) for s in shapes]
        self.offsets = [0] * len(shapes)
        total = 0
        for i, n in enumerate(self.sizes):
            self.offsets[i] = total
            total += n
        self.size = total
        self.data = aligned_zeros(total, self.dtype)
        self.grad = aligned_zeros(total, self.dtype)
        self.params = self.views(self.data)
        self.grads = self.views(self.grad)

    @classmethod
    def from_arrays(cls, arrays, dtype=None):
        """A FlatParams with the shapes of ``arrays`` and their values copied in.  dtype:
        float32 or float64; default float64 if any array is float64, else float32."""
        if isinstance(arrays, np.ndarray):
            raise TypeError("arrays: must be a list of arrays, not one array (wrap it in a list)")
        arrays = [V.asarray(a, f"arrays[{i}]") for i, a in enumerate(arrays)]
        for i, a in enumerate(arrays):  # with a dtype given too: no complex, str or object parsing
            if a.dtype.kind not in "fiub":
                raise TypeError(f"arrays[{i}]: dtype {a.dtype} is not real numeric")
        if dtype is None:
            dtype = V.F64 if any(a.dtype == V.F64 for a in arrays) else V.F32
        flat = cls([a.shape for a in arrays], dtype)
        for view, a in zip(flat.params, arrays):
            view[...] = a
        return flat

    def views(self, block):
        """Views of a flat block (``data``, ``grad`` or a state block) shaped as the parameters."""
        return [block[o:o + n].reshape(s) for o, n, s in zip(self.offsets, self.sizes, self.shapes)]

    # The blocks may be rebound (an optimizer refuses that after it is built), but only to an
    # array the kernels can take as this layout: a 1-D C-contiguous ndarray (or np.memmap) of
    # `size` elements of the FlatParams' dtype; the views are then made anew over it.  What
    # does not fit is refused here, before the kernels read `size` elements of it.
    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, block):
        self._data = self._block(block, "flat.data")
        self.params = self.views(self._data)

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, block):
        self._grad = self._block(block, "flat.grad")
        self.grads = self.views(self._grad)

    def _block(self, a, name):
        if type(a) is not np.ndarray:
            if not isinstance(a, np.ndarray):
                raise TypeError(f"{name}: must be a numpy.ndarray, got {type(a).__name__}")
            V.subclass(a, name)
        if a.dtype != self.dtype:
            raise TypeError(f"{name}: dtype must be the FlatParams' {self.dtype}, got {a.dtype}")
        if a.shape != (self.size,):
            raise ValueError(f"{name}: must have shape ({self.size},), got {a.shape}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name}: must be C-contiguous")
        return a

    def zero_grad(self):
        """Set every gradient to zero (one pass over the gradient block)."""
        V.inplace(self.grad, "flat.grad")[...] = 0

    # ---- copies: the views are made anew from the new blocks, never copied one by one ----
    # (a view copied on its own, by numpy's deepcopy or by pickle, becomes an array of its own)
    def __reduce__(self):
        extra = {k: v for k, v in self.__dict__.items() if k not in _LAYOUT}
        return _rebuild, (type(self), self.shapes, self.dtype, self.data, self.grad), extra or None

    def __deepcopy__(self, memo):
        new = _rebuild(type(self), self.shapes, self.dtype, self.data, self.grad)
        memo[id(self)] = new
        # the rest of this deepcopy (an optimizer's state, a user's list of params) gets the
        # copy's block or view for each of ours; ours are kept alive with the memo, as copy
        # does with what it copies, so no id is reused while the memo lives
        ours = [self.data, self.grad, *self.params, *self.grads]
        for a, b in zip(ours, [new.data, new.grad, *new.params, *new.grads]):
            memo[id(a)] = b
        memo.setdefault(id(memo), []).extend(ours)
        for k, v in self.__dict__.items():
            if k not in _LAYOUT:
                setattr(new, k, copy.deepcopy(v, memo))
        return new

    def __copy__(self):
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        for k in ("shapes", "sizes", "offsets", "params", "grads"):  # its own lists, the same arrays
            setattr(new, k, list(getattr(self, k)))
        return new

    def __len__(self):
        return len(self.shapes)

    def __repr__(self):
        return f"FlatParams({len(self.shapes)} parameters, {self.size} elements, {self.dtype})"


# what __init__ computes from (shapes, dtype): not copied, made anew
_LAYOUT = frozenset({"dtype", "shapes", "sizes", "offsets", "size", "_data", "_grad", "params", "grads"})


def _rebuild(cls, shapes, dtype, data, grad):
    """A FlatParams (of class cls) of that layout with new aligned blocks holding the values of
    data and grad, and views of them (pickle's and deepcopy's constructor)."""
    flat = cls.__new__(cls)
    FlatParams.__init__(flat, shapes, dtype)
    flat.data[...] = data
    flat.grad[...] = grad
    return flat
