# The C kernels are a cffi extension; cffi_modules has no pyproject.toml spelling yet.
# fastloss._entry is the public functions' fast path (csrc/pyentry/entry.c): CPython C,
# no kernels inside (it calls the cffi module's, bound at import by fastloss/_fast.py).
# It reads arrays through NumPy's C API, so it builds against NumPy's headers (NumPy 2's
# target the 1.23 ABI by default: the module runs with numpy >= 1.24).
import numpy
from setuptools import Extension, setup

setup(
    cffi_modules=["csrc/build_cffi.py:ffibuilder"],
    ext_modules=[Extension("fastloss._entry", ["csrc/pyentry/entry.c"], include_dirs=[numpy.get_include()],
                           extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"])],
)
