"""The three interchangeable backends, each a module with the same functions and signatures:

  c          the compiled C kernels (csrc/, cffi extension fastloss._fastloss_c)
  numba      the Numba kernels (fastloss.backend.numba)
  reference  plain NumPy in float64: the textbook formulas everything is checked against

Backend functions take validated, C-contiguous arrays of one dtype (float32 or float64) and
never check anything themselves; fastloss's public functions validate and dispatch.
"""
