"""The one place that writes into ``figures/``.

``savefig(fig, "overlap_histogram")`` writes ``figures/overlap_histogram.png`` atomically. The
folder defaults to the repo's ``figures/`` and can be redirected with ``VISRC_FIGURES_DIR`` (tests
point it at a temp dir, ``visrc reproduce --quick`` at ``runs/figures_quick/``, so neither touches
the committed figures).
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

from visrc.fileio import atomic_write_bytes, atomic_write_text

from visrc.paths import REPO_ROOT


def figures_dir() -> Path:
    """``$VISRC_FIGURES_DIR`` (an empty value counts as unset), else the repo's ``figures/``; created."""
    d = Path(os.environ.get("VISRC_FIGURES_DIR") or REPO_ROOT / "figures")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"figure name {name!r}: use letters, digits, '_', '-', '.' only")
    return name


def savefig(fig, name: str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as ``figures/<name>.png`` (atomic) and return the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(figures_dir() / f"{_name(name)}.png", buf.getvalue())


def savetable(df, name: str) -> tuple[Path, Path]:
    """Save a pandas table as ``figures/<name>.csv`` and ``figures/<name>.md`` (atomic)."""
    csv = atomic_write_text(figures_dir() / f"{_name(name)}.csv", df.to_csv(index=True))
    md = atomic_write_text(figures_dir() / f"{_name(name)}.md", df.to_markdown())
    return csv, md


def plot_metric_bars(table, metrics=("AP", "AP50", "AR10"), paper_col: str | None = "paper AP", title: str = ""):
    """Grouped bars of ``<metric> mean`` (error bars: ``<metric> std`` over seeds) per row of an ablation
    table; with ``AP low`` / ``AP high`` columns (:func:`visrc.experiments.tables.summary_table`), the
    AP bars also carry their 95% bootstrap interval over videos as a black range; an ensemble row's
    ``members`` column goes under its label."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.6 + 1.5 * len(table), 3.6))
    ax = fig.subplots()
    x = np.arange(len(table))
    width = 0.8 / (len(metrics) + (paper_col in table.columns if paper_col else 0))
    for i, m in enumerate(metrics):
        std = table.get(f"{m} std")
        ax.bar(x + i * width, table[f"{m} mean"], width, yerr=None if std is None else std.fillna(0), label=f"ours {m}", capsize=2)
        if m == "AP" and "AP low" in table.columns and "AP high" in table.columns:
            ax.vlines(x + i * width, table["AP low"].astype(float), table["AP high"].astype(float), color="black",
                      linewidth=1.2, label="AP 95% interval (videos)")
    if paper_col and paper_col in table.columns:
        ax.bar(x + len(metrics) * width, table[paper_col].astype(float), width, label=f"{paper_col} (YouTube-VIS 2021)",
               color="lightgray", edgecolor="gray")
    ax.set_xticks(x + width * (len(metrics) - 1) / 2 + (width / 2 if paper_col else 0))
    members = table["members"] if "members" in table.columns else [""] * len(table)
    ax.set_xticklabels([f"{r}\nmembers: {m}" if m else r for r, m in zip(table.index, members)],
                       rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("video AP / AR")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))      # outside: never over a bar
    return fig


def plot_ap_vs_frames(df, metrics=("AP", "AP50"), title: str = ""):
    """Fig. 2b: metrics (mean +- std over seeds) against frames per video; ``df`` has columns
    ``frames`` (int, or a label such as "all" for the last point), one column per metric and
    optionally ``schedule`` (one line per schedule and metric, e.g. equal iterations / epochs) and
    ``<metric>_low`` / ``<metric>_high`` (the bootstrap interval over videos, drawn as a band)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 3.6))
    ax = fig.subplots()
    labels = [str(f) for f in dict.fromkeys(df["frames"])]
    df = df.assign(frames=df["frames"].astype(str))
    schedules = list(dict.fromkeys(df["schedule"])) if "schedule" in df else [None]
    for si, schedule in enumerate(schedules):
        part = df if schedule is None else df[df["schedule"] == schedule]
        g = part.groupby("frames", sort=False)
        for mi, m in enumerate(metrics):
            mean = g[m].mean().reindex(labels)
            std = g[m].std(ddof=1).reindex(labels).fillna(0)
            label = m if len(schedules) == 1 else f"{m}, {str(schedule).replace('_', ' ')}"
            ax.errorbar(range(len(labels)), mean, yerr=std, marker="os^v"[si % 4], capsize=3, label=label,
                        color=f"C{mi}", linestyle=["-", "--", ":", "-."][si % 4])
            if f"{m}_low" in part and f"{m}_high" in part:     # the bootstrap interval over videos
                ax.fill_between(range(len(labels)), g[f"{m}_low"].mean().reindex(labels),
                                g[f"{m}_high"].mean().reindex(labels), color=f"C{mi}", alpha=0.12,
                                label=f"{m} 95% interval (videos)" if si == 0 else None)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels)
    ax.set_ylim(bottom=0)   # AP from 0: the gaps between settings at their true scale
    ax.set_xlabel("training frames per video (uniformly sampled)")
    ax.set_ylabel("valid video AP")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return fig


def plot_interval_width_vs_videos(summary, title: str = "", note: str = ""):
    """Per row (one colour each): the mean 95% bootstrap interval width of AP over videos (solid) and the
    AP std over seeds (dashed) against the number of test videos scored
    (:meth:`visrc.experiments.valid_size.ValidSizeStudy.summary`); where a solid line runs below its
    dashed one, the test split is large enough that evaluation noise is the smaller part. An empty
    ``summary`` (a skipped study) gives a figure that says ``note``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.subplots()
    if summary.empty:
        ax.text(0.5, 0.5, note or "no runs", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(title, fontsize=9)
        return fig
    for i, (row, part) in enumerate(summary.groupby("row", sort=False)):
        ax.plot(part["videos"], part["AP interval width"], marker="o", color=f"C{i}", label=f"{row}: interval")
        ax.plot(part["videos"], part["AP seed std"], marker="x", linestyle="--", color=f"C{i}", label=f"{row}: seed std")
    ax.set_xscale("log", base=2)
    sizes = sorted(set(summary["videos"]))
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(n) for n in sizes])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("valid videos scored (the first n of the longer split)")
    ax.set_ylabel("AP: interval width / seed std")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
