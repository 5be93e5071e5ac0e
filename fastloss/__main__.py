"""python -m fastloss info | check | bench [--quick]"""
import argparse
import sys

import fastloss
from fastloss import _config


def info(args):
    print(f"fastloss {fastloss.__version__}")
    print(f"backends: {', '.join(_config.backends())} (default: {_config.get_backend()})")
    print(f"threads: {_config.get_num_threads()}")
    for name in _config.backends():
        try:
            details = _config.module(name).info()
        except Exception as e:  # report, don't crash: info is the diagnostic tool
            details = {"error": repr(e)}
        print(f"[{name}] " + "; ".join(f"{k}: {v}" for k, v in details.items()))
    return 0


def check(args):
    from fastloss import _check
    return 0 if _check.run() else 1


def bench(args):
    from fastloss import _bench
    sizes = _bench.QUICK_SIZES if args.quick else _bench.SIZES
    _bench.run(sizes=sizes, quick=args.quick,
               progress=lambda s: print(s, file=sys.stderr, flush=True))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m fastloss", description=fastloss.__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", help="version, backends, SIMD path, numba threading layer, threads")
    sub.add_parser("check", help="every kernel x backend x dtype vs the float64 reference; exit 1 on failure")
    b = sub.add_parser("bench", help="time every kernel per backend (PyTorch beside it when installed)")
    b.add_argument("--quick", action="store_true", help="small sizes, short timing loops")
    args = ap.parse_args(argv)
    return {"info": info, "check": check, "bench": bench}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
