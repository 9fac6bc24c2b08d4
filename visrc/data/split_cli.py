"""`visrc split-train TRAIN_JSON --out-dir DIR [--fraction 0.1] [--seed 0] [--data-root] [--force]`.

Writes ``DIR/train_split.json`` and ``DIR/heldout.json`` (see :func:`visrc.data.split.split_train`).
Train on the first, score on the second: ``visrc evaluate --gt DIR/heldout.json --results ...``.

``--data-root`` also lays DIR out as a YouTube-VIS root that the configs and notebooks read
(``data_root=DIR``): ``DIR/train/instances.json`` and ``DIR/valid/instances.json`` link to the two
files, and ``DIR/{train,valid}/JPEGImages`` link to the frames (``--frames``, by default the
``JPEGImages`` folder next to TRAIN_JSON). Existing outputs are kept unless ``--force``.
"""
from __future__ import annotations

import os
from pathlib import Path

OUTPUTS = ("train_split.json", "heldout.json")
LAYOUT = {"train": "train_split.json", "valid": "heldout.json"}


def add_arguments(parser) -> None:
    parser.add_argument("train_json", metavar="TRAIN_JSON", help="YouTube-VIS train annotations (with GT)")
    parser.add_argument("--out-dir", required=True, help="folder for train_split.json and heldout.json")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of the videos to hold out (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the video shuffle (default 0)")
    parser.add_argument("--data-root", action="store_true",
                        help="also make --out-dir a YouTube-VIS root: train/ and valid/ with instances.json "
                             "and JPEGImages as links")
    parser.add_argument("--frames", help="with --data-root: the frames folder (default: JPEGImages next to TRAIN_JSON)")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")


def _outputs(out: Path, data_root: bool) -> list[Path]:
    paths = [out / n for n in OUTPUTS]
    if data_root:
        paths += [out / s / n for s in LAYOUT for n in ("instances.json", "JPEGImages")]
    return paths


def _link(path: Path, target: str | Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        raise ValueError(f"{path}: exists and is not a link or a file; remove it first")
    os.symlink(target, path)


def run(args) -> int:
    from visrc.data.split import split_summary, split_train
    from visrc.data.ytvis import load_ytvis, write_ytvis

    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: --out-dir is a file, not a directory")
    frames = None
    if args.data_root:
        frames = Path(args.frames) if args.frames else Path(args.train_json).resolve().parent / "JPEGImages"
        if not frames.is_dir():
            raise FileNotFoundError(f"{frames}: frames folder not found (pass --frames)")
    elif args.frames:
        raise ValueError("--frames needs --data-root")
    existing = [str(p) for p in _outputs(out, args.data_root) if p.exists() or p.is_symlink()]
    if existing and not args.force:
        raise ValueError(f"{existing[0]} exists; pass --force to overwrite")

    data = load_ytvis(args.train_json)
    train_part, heldout = split_train(data, fraction=args.fraction, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in zip(OUTPUTS, (train_part, heldout)):
        write_ytvis(part, out / name)
    if frames is not None:
        for split, name in LAYOUT.items():
            _link(out / split / "instances.json", Path("..") / name)
            _link(out / split / "JPEGImages", frames.resolve())

    s = split_summary(train_part, heldout)
    for side, name in zip(("train", "heldout"), OUTPUTS):
        c = s[side]
        print(f"{out / name}: {c['videos']} videos, {c['annotations']} tracks, {c['categories']} categories")
    if s["train_only"]:
        print(f"categories without a held-out video: {', '.join(s['train_only'])}")
    if frames is not None:
        print(f"{out} is a YouTube-VIS root (train/ = train_split, valid/ = heldout; frames from {frames})")
    return 0
