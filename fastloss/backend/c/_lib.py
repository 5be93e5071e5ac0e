"""The cffi extension and the pointer helpers every C family module uses."""
from ..._fastloss_c import ffi, lib
from ..._validate import F32

NULL = ffi.NULL
from_buffer = ffi.from_buffer
# ctype objects, not "float[]" strings: from_buffer then skips parsing the type
# (0.2 -> 0.12 us an array, bench/NOTES_optim.md)
P32, P64, PI64 = ffi.typeof("float[]"), ffi.typeof("double[]"), ffi.typeof("int64_t[]")


def ptr(a, ctype):
    """A cdata pointer to a's memory (no copy), or NULL for None."""
    return NULL if a is None else from_buffer(ctype, a)


def is_f32(dtype):
    """float32 by value: an array's dtype need not be numpy's float32 singleton (one that went
    through pickle, or a dtype with metadata, is an equal but distinct object), and taking
    such an array for float64 would run the double kernel over twice its bytes.  `is` first:
    the common case costs no comparison."""
    return dtype is F32 or dtype == F32


def pick(name, dtype):
    """(kernel, pointer cdecl) for fl_<name>_f32 / fl_<name>_f64 by dtype."""
    if is_f32(dtype):
        return getattr(lib, f"fl_{name}_f32"), P32
    return getattr(lib, f"fl_{name}_f64"), P64
