"""What every Numba kernel shares: the jit flags, serial/parallel twins, chunking."""
import types

import numba
from numba import njit

# Fast-math flags that keep NaN/Inf semantics: no 'nnan'/'ninf' (NaN and Inf must propagate
# exactly as in PyTorch) and no 'afn' (sqrt/exp stay exact library results).  'reassoc' lets
# LLVM vectorize the float64 loss reductions; 'contract' allows FMA.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# Below this many elements per thread a kernel runs serially (see bench/NOTES.md: a numba
# parallel region costs ~1.5 us here).
GRAIN_STREAM = 32768

_threads = 1


def jit(f):
    """A serial helper called by the kernels (not inlined: e.g. one chunk's loop)."""
    return njit(nogil=True, cache=True, fastmath=FASTMATH)(f)


def inline(f):
    """A per-element helper: inlined into every kernel at the Numba IR level."""
    return njit(inline="always", nogil=True, cache=True, fastmath=FASTMATH)(f)


def kernel(f, fastmath=FASTMATH):
    """Compile f twice: a serial version (f) and a parallel one (prange over chunks), as two
    cacheable functions with distinct names; returns (serial, parallel).  Kernels without a
    reduction pass fastmath=False: 'contract' fuses multiply-adds differently in the vector
    body and the scalar remainder, so an element's last bit would depend on its position."""
    par = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_par", f.__defaults__, f.__closure__)
    par.__qualname__ = f.__qualname__ + "_par"
    serial = njit(nogil=True, cache=True, fastmath=fastmath)(f)
    parallel = njit(nogil=True, cache=True, fastmath=fastmath, parallel=True)(par)
    return serial, parallel


def set_num_threads(n):
    global _threads
    _threads = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))


def _numba_threads_public():
    """numba's thread count for the calling thread, through its public function: 0.7 us a
    call here (it takes numba's start-up locks every time), so used only until the parallel
    backend has started; then plan() reads the count directly (`_numba_threads`)."""
    global _numba_threads
    nt = numba.get_num_threads()  # starts the threading layer if it has not started
    try:
        from numba.np.ufunc import parallel
        get = parallel._get_num_threads  # numba's C getter (ctypes), set once it started
        if get() == nt:
            _numba_threads = get
    except (ImportError, AttributeError):  # another numba layout: keep the public function
        pass
    return nt


_numba_threads = _numba_threads_public


def plan(n, grain=GRAIN_STREAM):
    """Number of chunks for n elements (1 = run the serial twin).  Going parallel, sets
    numba's thread count for the calling thread (numba's setting is per thread) to the number
    of chunks, only when it differs: the result's bits depend on the chunks alone, the thread
    count only decides who runs them."""
    nt = _threads
    if n < 2 * grain or nt <= 1:
        return 1
    if n < nt * grain:
        nt = n // grain
    if _numba_threads() != nt:
        numba.set_num_threads(nt)
    return nt


@njit(inline="always", nogil=True, cache=True)
def bounds(n, c, nchunks):
    """[lo, hi) of chunk c of nchunks, on multiples of 16 elements (whole cache lines)."""
    blocks = (n + 15) // 16
    lo = (blocks * c // nchunks) * 16
    hi = (blocks * (c + 1) // nchunks) * 16
    return min(lo, n), min(hi, n)

