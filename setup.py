# The C kernels are a cffi extension; cffi_modules has no pyproject.toml spelling yet.
# fastloss._entry is the public functions' fast path (csrc/pyentry/entry.c): plain CPython C,
# no kernels inside (it calls the cffi module's, bound at import by fastloss/_fast.py).
from setuptools import Extension, setup

setup(
    cffi_modules=["csrc/build_cffi.py:ffibuilder"],
    ext_modules=[Extension("fastloss._entry", ["csrc/pyentry/entry.c"],
                           extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"])],
)
