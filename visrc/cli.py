"""`visrc` command line. Each subcommand lives with its component; this file only wires them.

Subcommand modules expose ``add_arguments(parser)`` and ``run(args) -> int`` and are imported
lazily, so ``visrc validate`` does not pay for importing torch/mmdet.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS = {
    "make-toy": ("visrc.data.toy_cli", "generate the embedded synthetic VIS benchmark"),
    "validate": ("visrc.evaluation.validate_cli", "validate a YouTube-VIS annotation or results JSON"),
    "evaluate": ("visrc.evaluation.evaluate_cli", "video AP of a results file against YouTube-VIS GT"),
    "train": ("visrc.models.train_cli", "train a model config on mmengine's Runner"),
    "infer": ("visrc.infer_cli", "run a trained model over a split and write results.json"),
    "demo": ("visrc.demo_cli", "draw tracked masks/boxes/ids on a video's frames"),
    "reproduce": ("visrc.reproduce", "generate data, train, and execute every notebook"),
}


def _load(name: str):
    module, _ = SUBCOMMANDS[name]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise SystemExit(f"visrc {name}: not available in this build ({module} is missing)")
        raise


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="visrc", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        parser.print_help() if (not argv or argv[0] in ("-h", "--help")) else parser.parse_args(argv)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    mod = _load(argv[0])
    cmd_parser = argparse.ArgumentParser(prog=f"visrc {argv[0]}", description=SUBCOMMANDS[argv[0]][1])
    mod.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    return int(mod.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
