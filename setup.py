# The C kernels are a cffi extension; cffi_modules has no pyproject.toml spelling yet.
from setuptools import setup

setup(cffi_modules=["csrc/build_cffi.py:ffibuilder"])
