"""`visrc` command line. Each subcommand lives with its component; this file only wires them
(and holds ``visrc configs``, which lists the packaged configs: too small for a module of its own).

Subcommand modules expose ``add_arguments(parser)`` and ``run(args) -> int`` and are imported
lazily, so ``visrc validate`` does not pay for importing torch/mmdet.

Errors: an expected failure (a missing file or folder, bad JSON, a file breaking the YouTube-VIS
or predictions format, a checkpoint that does not load, an unknown config name, an undecodable
frame, a ``ValueError`` raised by visrc) prints one line, ``visrc COMMAND: error: <file>: <problem>``,
on stderr and exits 1; ``visrc --debug COMMAND ...`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

# name -> (module, one-line help)
SUBCOMMANDS = {
    "make-toy": ("visrc.data.toy_cli", "generate the embedded synthetic VIS benchmark"),
    "split-train": ("visrc.data.split_cli", "carve a held-out set of videos from a train JSON for local AP"),
    "validate": ("visrc.evaluation.validate_cli", "validate a YouTube-VIS annotation or results JSON"),
    "evaluate": ("visrc.evaluation.evaluate_cli", "video AP of a results file against YouTube-VIS GT"),
    "errors": ("visrc.evaluation.errors_cli",
               "TIVE error analysis: each prediction's error type and the ΔAP of fixing each type"),
    "train": ("visrc.models.train_cli", "train a model config on mmengine's Runner"),
    "make-json": ("visrc.data.make_json_cli", "turn a folder of videos / frame folders into a YouTube-VIS JSON"),
    "openimages-to-coco": ("visrc.data.openimages",
                           "convert OpenImages' released CSVs + mask PNGs to the COCO-like JSON of the MSD loader"),
    "infer": ("visrc.infer_cli", "run a trained model over a split or video files and write results.json"),
    "demo": ("visrc.demo_cli", "draw tracked masks/boxes/ids on a video file or frame folder"),
    "configs": ("visrc.cli", "list the packaged configs (names usable wherever a CONFIG is asked for)"),
    "reproduce": ("visrc.reproduce", "generate data, train, and execute every notebook"),
    "compare-table1": ("visrc.experiments.compare_cli",
                       "Table 1 of two multi-seed runs (e.g. two schedules) side by side on the longer valid split"),
}


# ---- `visrc configs`: small enough to live here; SUBCOMMANDS points at this module for it

def config_summaries() -> list[tuple[str, str]]:
    """(name, first sentence of its leading comment) of every packaged config."""
    import re

    from visrc.models.config import CONFIG_DIR, available_configs

    out = []
    for name in available_configs():
        lines = []
        for line in (CONFIG_DIR / f"{name}.py").read_text().splitlines():
            if not line.startswith("#"):
                break
            lines.append(line.lstrip("#").strip())
        text = " ".join(lines)
        sentence = re.split(r"(?<=\.)\s", text, maxsplit=1)[0] if text else ""
        if len(sentence) > 100:           # a long first sentence: its head (before a top-level ': ') says what it is
            depth = 0
            for i, ch in enumerate(sentence):
                depth += (ch == "(") - (ch == ")")
                if depth == 0 and sentence.startswith(": ", i):
                    sentence = sentence[:i]
                    break
        if len(sentence) > 110:
            sentence = sentence[:108].rsplit(" ", 1)[0] + " ..."
        out.append((name, sentence))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``visrc configs`` (none)."""


def run(args: argparse.Namespace) -> int:
    """``visrc configs``: one line per packaged config, its name and what it is."""
    rows = config_summaries()
    width = max(len(name) for name, _ in rows)
    for name, text in rows:
        print(f"{name:<{width}}  {text}")
    return 0


def _load(name: str):
    module, _ = SUBCOMMANDS[name]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise SystemExit(f"visrc {name}: not available in this build ({module} is missing)")
        raise


def _raised_by_visrc(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is visrc code (so its message was written
    for the user, not a library's internal ValueError)."""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return False
    package = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(last.tb_frame.f_code.co_filename).startswith(package + os.sep)


def expected_error(exc: BaseException) -> str | None:
    """The one-line message for an expected failure, or None for anything else (a bug: traceback).

    Expected: a missing file or folder or an output in the way (``FileNotFoundError``,
    ``FileExistsError``, ``NotADirectoryError``, ``IsADirectoryError``), ``json.JSONDecodeError``,
    the format errors (:class:`visrc.data.ytvis.YTVISFormatError`, :class:`visrc.data.predictions.PredictionsFormatError`),
    :class:`visrc.models.checkpoint.CheckpointError`, and a ``ValueError`` raised in visrc's own code."""
    if isinstance(exc, (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError)):
        msg = str(exc) if not exc.filename or str(exc.filename) in str(exc) else f"{exc.filename}: {exc.strerror}"
    elif isinstance(exc, json.JSONDecodeError):
        msg = f"not valid JSON: {exc}"
    elif isinstance(exc, ValueError) and (type(exc).__name__ in ("YTVISFormatError", "PredictionsFormatError",
                                                                 "CheckpointError") or _raised_by_visrc(exc)):
        msg = str(exc)
    else:
        return None
    return " ".join(msg.split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = False
    while argv and argv[0] in ("--debug", "--version"):
        if argv.pop(0) == "--version":
            from visrc import __version__
            print(f"visrc {__version__}")
            return 0
        debug = True
    parser = argparse.ArgumentParser(prog="visrc", description=__doc__.splitlines()[0],
                                     epilog="--debug (before COMMAND): show the traceback of a failure; "
                                            "--version: print the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        parser.print_help() if (not argv or argv[0] in ("-h", "--help")) else parser.parse_args(argv)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    try:                # importing a command can fail on the environment too (e.g. a bad VISRC_KERNELS)
        mod = _load(argv[0])
        cmd_parser = argparse.ArgumentParser(prog=f"visrc {argv[0]}", description=SUBCOMMANDS[argv[0]][1])
        mod.add_arguments(cmd_parser)
        args = cmd_parser.parse_args(argv[1:])
        return int(mod.run(args) or 0)
    except Exception as exc:
        msg = None if debug else expected_error(exc)
        if msg is None:
            raise
        print(f"visrc {argv[0]}: error: {msg}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
