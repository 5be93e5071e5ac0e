"""Backend choice and thread count: the global settings every public function consults."""
import importlib
import importlib.util
import os

BACKEND_NAMES = ("c", "numba", "numpy")
_MODULES = {"c": "fastloss.backend.c", "numba": "fastloss.backend.numba", "numpy": "fastloss.backend.reference"}
_loaded = {}
_default = None
_threads = None


def _available(name):
    if name == "numpy":
        return True
    if name == "numba":
        return importlib.util.find_spec("numba") is not None
    if name == "c":
        return importlib.util.find_spec("fastloss._fastloss_c") is not None
    return False


def backends():
    """Names of the backends usable here, default first: ``c``, ``numba``, ``numpy``."""
    return [n for n in BACKEND_NAMES if _available(n)]


def _check_name(name):
    if not isinstance(name, str) or name not in BACKEND_NAMES:
        raise ValueError(f"backend: unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    if not _available(name):
        raise ValueError(f"backend: {name!r} is not available in this installation (available: {backends()})")


def module(name=None):
    """The backend module for ``name`` (None: the global default). Imports it on first use
    (numba is imported only when the numba backend is first used)."""
    if name is None:
        name = get_backend()
    mod = _loaded.get(name)
    if mod is None:
        _check_name(name)
        mod = importlib.import_module(_MODULES[name])
        _loaded[name] = mod
        mod.set_num_threads(get_num_threads())
        from . import _fast
        _fast.bind_backend(name, mod)
    return mod


def set_backend(name):
    """Make ``name`` the default backend of every call that passes ``backend=None``."""
    global _default
    _check_name(name)
    _default = name
    from . import _fast
    _fast.refresh()


def get_backend():
    """The default backend: set_backend(), else $FASTLOSS_BACKEND, else ``c`` (``numba`` when
    the C extension is not built)."""
    global _default
    if _default is None:
        env = os.environ.get("FASTLOSS_BACKEND")
        if env:
            try:
                _check_name(env)
            except ValueError as e:
                raise ValueError(f"FASTLOSS_BACKEND={env!r}: {e}") from None
            _default = env
        else:
            _default = "c" if _available("c") else "numba"
    return _default


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


MAX_THREADS = 1024   # csrc/runtime.c's FL_MAX_THREADS: the C driver's per-thread partial sums


def set_num_threads(n):
    """Threads used by both compiled backends (an int >= 1)."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"set_num_threads: n must be an int in [1, {MAX_THREADS}], got {n!r}")
    _threads = n
    for mod in _loaded.values():
        mod.set_num_threads(n)
    from . import _fast   # the fast path's C kernels, with or without the "c" module loaded
    _fast.set_num_threads(n)


def get_num_threads():
    """Threads used by both compiled backends; default: the CPUs available to this process."""
    global _threads
    if _threads is None:
        _threads = _cpus()
    return _threads
