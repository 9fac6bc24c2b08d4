"""``visrc compare-table1 REFERENCE OTHER``: Table 1 of two multi-seed runs (e.g. two training schedules,
each notebook 03's ``*_metrics.json`` with its ``valid_size`` study) side by side on the longer valid split.

Prints, and saves under ``figures/`` (``--name``): each row's AP in both and the difference with its seed
se (``<name>_rows``), each reading of Table 1 in both (``<name>_readings``), and whether the other run
tells the same story (:func:`visrc.experiments.valid_size.compare_studies`).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def load_study(path: str | Path):
    """The :class:`~visrc.experiments.valid_size.ValidSizeStudy` recorded in notebook 03's metrics file."""
    from visrc.experiments.table1 import table1_comparisons
    from visrc.experiments.valid_size import ValidSizeStudy
    from visrc.fileio import read_json

    metrics = read_json(path)
    record = metrics.get("valid_size") if isinstance(metrics, dict) else None
    if not isinstance(record, dict) or not isinstance(metrics.get("runs"), list):
        raise ValueError(f"{path}: not notebook 03's metrics (needs 'runs' and a 'valid_size' record)")
    if not record.get("runs"):
        raise ValueError(f"{path}: valid_size: the study did not run ({record.get('note') or 'no runs'})")
    rows = list(dict.fromkeys(r["row"] for r in metrics["runs"]))
    return ValidSizeStudy(record["runs"], record["sizes"], record.get("eval_root"), table1_comparisons(rows))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", help="notebook 03's metrics JSON of the reference run (e.g. figures/seeds/)")
    parser.add_argument("other", help="notebook 03's metrics JSON of the run to compare")
    parser.add_argument("--videos", type=int, default=None,
                        help="the number of leading valid videos to compare at (default: the longest both have)")
    parser.add_argument("--name", default=None, help="save the tables as figures/<name>_rows.* and <name>_readings.*")


def run(args: argparse.Namespace) -> int:
    from visrc.experiments.valid_size import compare_studies

    rows, readings, same = compare_studies(load_study(args.reference), load_study(args.other), args.videos)
    if args.name:
        from visrc.viz.plots import savetable

        savetable(rows.round(4), f"{args.name}_rows")
        savetable(readings.round(4), f"{args.name}_readings")
    print(rows.round(4).to_markdown(index=False), readings.round(4).to_markdown(index=False), sep="\n\n")
    print(f"\nsame story: {'yes' if same else 'no'} (every row within 2 seed se of the reference and "
          f"every reading's verdict unchanged)")
    return 0
