"""python -m fastloss info | check | bench [--quick] [--cold] [--kernels ...] [--sizes ...] [--json PATH]
[--csv PATH]"""
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


def _progress(msg, end="\n"):
    """Progress on stderr: redrawn in place on a terminal, whole lines only otherwise."""
    if sys.stderr.isatty():
        print(msg, end=end, file=sys.stderr, flush=True)
    elif end == "\n":
        print(msg.lstrip("\r"), file=sys.stderr, flush=True)


def _ints(text):
    try:
        return tuple(int(float(s)) for s in text.split(",") if s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes like 1e3,1e6, got {text!r}") from None


def _shapes(text):
    try:
        return tuple(tuple(int(float(d)) for d in s.lower().split("x")) for s in text.split(",") if s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated shapes like 256x10,4096x1000, got {text!r}") from None


def _names(text):
    return tuple(s.strip() for s in text.split(",") if s.strip())


def bench(args):
    from fastloss import _bench
    try:
        result = _bench.run(kernels=args.kernels, sizes=args.sizes, shapes=args.shapes, quick=args.quick,
                            impls=args.impls, passes=args.passes, progress=_progress, cold=args.cold,
                            samples=args.samples,
                            evict_bytes=None if args.evict_mb is None else int(args.evict_mb * (1 << 20)))
    except ValueError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    if args.json:
        _bench.write_json(args.json, result)
    if args.csv:
        _bench.write_csv(args.csv, result["rows"])
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m fastloss", description=fastloss.__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", help="version, backends, SIMD path, numba threading layer, threads")
    sub.add_parser("check", help="every kernel x backend x dtype vs the float64 reference; exit 1 on failure")
    b = sub.add_parser("bench", help="every kernel beside its peers (NumPy textbook, PyTorch, optax/JAX, "
                                     "DeepSpeed when installed) and its memory roofline")
    b.add_argument("--quick", action="store_true", help="small sizes, short timing loops (well under a minute)")
    b.add_argument("--kernels", type=_names, metavar="K1,K2",
                   help="only these kernels (e.g. mse,adam,cross_entropy,adam_flat)")
    b.add_argument("--sizes", type=_ints, metavar="N1,N2",
                   help="element counts of the elementwise losses and optimizers (default 1e3,1e5,1e6,1e7)")
    b.add_argument("--shapes", type=_shapes, metavar="NxC,...",
                   help="cross-entropy logits shapes (default 256x10,4096x1000,1024x32000)")
    b.add_argument("--impls", type=_names, metavar="I1,I2",
                   help="only these rows: c,numba,c-1tensor,reference,textbook,torch,optax,deepspeed,roofline")
    b.add_argument("--passes", type=int, metavar="N",
                   help="passes over every case, best per row (--cold: samples pooled) (default 2; 1 with --quick)")
    b.add_argument("--cold", action="store_true",
                   help="cold caches: before every timed call (every row, the roofline too) write a buffer of "
                        "4x the L3 (>= 128 MiB) to evict the caches; report the median of single calls "
                        "(default: warm caches, the minimum over batches of back-to-back calls)")
    b.add_argument("--samples", type=int, metavar="N",
                   help="with --cold: single calls per row per round (default 15, 5 with --quick; "
                        "x 2 rounds x --passes, pooled)")
    b.add_argument("--evict-mb", type=float, metavar="MB",
                   help="with --cold: size of the eviction buffer in MiB (default max(128, 4x the largest cache))")
    b.add_argument("--json", metavar="PATH", help="write the metadata and every row as JSON")
    b.add_argument("--csv", metavar="PATH", help="write every row as CSV")
    args = ap.parse_args(argv)
    if args.cmd == "bench" and not args.cold and (args.samples is not None or args.evict_mb is not None):
        ap.error("--samples and --evict-mb apply to --cold only")
    return {"info": info, "check": check, "bench": bench}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
