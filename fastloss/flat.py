"""FlatParams: many parameters (and their gradients) as views into two contiguous blocks.

An optimizer built over a FlatParams keeps its state in flat blocks of the same layout and
updates every parameter with one kernel call per step; clip_grad_norm reads its gradient
block in one call.  Elementwise optimizer kernels compute each element from that element
alone, so a flat update equals updating the same arrays one by one, bit for bit.
"""
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
        if dtype is None:
            for i, a in enumerate(arrays):
                if a.dtype.kind not in "fiub":
                    raise TypeError(f"arrays[{i}]: dtype {a.dtype} is not real numeric")
            dtype = V.F64 if any(a.dtype == V.F64 for a in arrays) else V.F32
        flat = cls([a.shape for a in arrays], dtype)
        for view, a in zip(flat.params, arrays):
            view[...] = a
        return flat

    def views(self, block):
        """Views of a flat block (``data``, ``grad`` or a state block) shaped as the parameters."""
        return [block[o:o + n].reshape(s) for o, n, s in zip(self.offsets, self.sizes, self.shapes)]

    def zero_grad(self):
        """Set every gradient to zero (one pass over the gradient block)."""
        self.grad[...] = 0

    def __len__(self):
        return len(self.shapes)

    def __repr__(self):
        return f"FlatParams({len(self.shapes)} parameters, {self.size} elements, {self.dtype})"
