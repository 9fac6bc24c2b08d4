"""`visrc make-toy --out DIR [--preset small|default] [--seed N]`."""
from __future__ import annotations

import time


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--preset", default="default", choices=["small", "default"])
    parser.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    from visrc.data.toy import make_toy

    t0 = time.perf_counter()
    out = make_toy(args.out, preset=args.preset, seed=args.seed)
    print(f"wrote toy benchmark ({args.preset}, seed {args.seed}) to {out} in {time.perf_counter() - t0:.1f}s")
    return 0
