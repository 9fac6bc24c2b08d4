"""`visrc make-toy --out DIR [--preset small|default] [--seed N] [--force]`.

``DIR`` must be missing or empty unless ``--force`` (which writes over the files there, leaving
any others in place).
"""
from __future__ import annotations

import time
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output directory (created; must be empty unless --force)")
    parser.add_argument("--preset", default="default", choices=["small", "default"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="write into a non-empty --out")


def check_out(out: str | Path, force: bool = False) -> Path:
    """``--out`` before any work: not a file, and empty (or missing) unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: --out is a file, not a directory")
    if out.is_dir() and not force and any(out.iterdir()):
        raise ValueError(f"{out}: --out is not empty; pass --force to write into it")
    return out


def run(args) -> int:
    from visrc.data.toy import make_toy

    check_out(args.out, args.force)
    t0 = time.perf_counter()
    out = make_toy(args.out, preset=args.preset, seed=args.seed)
    print(f"wrote toy benchmark ({args.preset}, seed {args.seed}) to {out} in {time.perf_counter() - t0:.1f}s")
    return 0
