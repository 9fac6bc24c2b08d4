"""The paper's tables and the summary of toy runs beside them: mean, std and count over seeds."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from visrc.evaluation.bootstrap import BootstrapResult

TABLE_METRICS = ("AP", "AP50", "AP75", "AR1", "AR10")


def interval_columns(boot: BootstrapResult) -> dict:
    """A table row's bootstrap columns (:func:`visrc.evaluation.bootstrap.bootstrap_ap` over videos):
    ``<metric>_low`` and ``<metric>_high`` (the percentile interval) and ``<metric>_boot_std`` for
    every metric bootstrapped, e.g. ``{"AP_low", "AP_high", "AP_boot_std"}``. The ``boot_`` prefix
    keeps the resampling spread apart from the seed spread (``"AP std"`` of :func:`summary_table`)."""
    out = {}
    for m in boot.point:
        out.update({f"{m}_low": boot.low[m], f"{m}_high": boot.high[m], f"{m}_boot_std": boot.std[m]})
    return out


def row_interval(gt, results, n_boot: int = 1000) -> dict:
    """The AP bootstrap columns of one table row (:func:`interval_columns`): ``results`` (YouTube-VIS
    results: a list or a ``results.json`` path) against ``gt`` (dict or path), resampled over videos."""
    from visrc.evaluation.bootstrap import bootstrap_ap

    return interval_columns(bootstrap_ap(gt, results, n_boot=n_boot))


def metrics_row(metrics: dict) -> dict:
    """The table's metrics (:data:`TABLE_METRICS`) out of an evaluation's metrics dict."""
    return {k: metrics[k] for k in TABLE_METRICS}


# The paper's Table 1 (YouTube-VIS 2021 valid, ResNeSt-50), for side-by-side display only.
PAPER_TABLE1 = {
    "baseline": dict(AP=0.309, AP50=0.501, AP75=0.338, AR1=0.269, AR10=0.346),
    "+TCIS": dict(AP=0.331, AP50=0.535, AP75=0.354, AR1=0.285, AR10=0.368),
    "+TCIS+MultiTask": dict(AP=0.338, AP50=0.546, AP75=0.356, AR1=0.287, AR10=0.374),
    "+TCIS+MultiTask+MSD": dict(AP=0.364, AP50=0.570, AP75=0.402, AR1=0.299, AR10=0.397),
    "+TCIS+MultiTask+MSD+BiTrack": dict(AP=0.388, AP50=0.589, AP75=0.438, AR1=0.320, AR10=0.436),
}
# The paper's Table 2 (YouTube-VIS 2021 valid), for side-by-side display only. Model A here is
# the full toy model with the ResNet backbone (toy_tcis_multitask_msd; the paper: ResNeSt-101 "S101"),
# model B the same with the toy Swin (toy_swin_tcis_multitask_msd; the paper: Swin-S).
# Rows 4-6 train on pseudo-labelled valid and evaluate on valid (the paper's transductive protocol).
PAPER_TABLE2 = {
    "A": dict(AP=0.418, AP50=0.652, AP75=0.464, AR1=0.340, AR10=0.454),
    "B": dict(AP=0.440, AP50=0.666, AP75=0.504, AR1=0.359, AR10=0.476),
    "Ensemble (A, B)": dict(AP=0.464, AP50=0.698, AP75=0.515, AR1=0.376, AR10=0.505),
    "A + pseudo": dict(AP=0.539, AP50=0.777, AP75=0.628, AR1=0.421, AR10=0.578),
    "B + pseudo": dict(AP=0.560, AP50=0.792, AP75=0.644, AR1=0.430, AR10=0.594),
    "Ensemble (A, B, A+P, B+P)": dict(AP=0.575, AP50=0.806, AP75=0.671, AR1=0.441, AR10=0.609),
}


def summary_table(runs: list[dict], paper: dict | None = None):
    """Rows of ``{"row", "seed", <metric>: value}`` -> a pandas table of mean, std (over seeds) and run
    count per row (in first-seen row order); ``AP low`` / ``AP high`` (the 95% bootstrap interval over
    videos, mean over seeds) when the runs carry ``AP_low`` / ``AP_high``; an ensemble's ``members``
    (each seed's choice, ``" | "`` between seeds that chose differently; blank for single models);
    the paper's numbers beside the toy runs' when ``paper`` is given."""
    import pandas as pd

    df = pd.DataFrame(runs)
    order = list(dict.fromkeys(df["row"]))
    g = df.groupby("row", sort=False)[list(TABLE_METRICS)]
    table = g.mean().add_suffix(" mean").join(g.std(ddof=1).add_suffix(" std")).loc[order]
    table.insert(0, "seeds", g.size().loc[order])
    cols = ["seeds"] + [f"{m} {s}" for m in TABLE_METRICS for s in ("mean", "std")]
    table = table[cols]
    for col in ("AP_low", "AP_high"):        # the bootstrap interval over videos (mean over seeds)
        if col in df:
            table[f"{col.replace('_', ' ')}"] = df.groupby("row", sort=False)[col].mean().loc[order]
    if "members" in df:                      # which models an ensemble row fused (chosen on tune)
        chosen = df.groupby("row", sort=False)["members"].agg(lambda m: " | ".join(dict.fromkeys(m.dropna())))
        table["members"] = chosen.loc[order]
    if paper:
        table["paper AP"] = [paper.get(r, {}).get("AP") for r in order]
        table["paper AP50"] = [paper.get(r, {}).get("AP50") for r in order]
    return table


def row_differences(runs: list[dict], pairs, paper: dict | None = None, metric: str = "AP", z: float = 2.0):
    """Each ``(row, reference)`` of ``pairs`` -> one line: the difference of the two rows' mean
    ``metric`` over seeds, its seed standard error ``sqrt(s_row^2/n_row + s_ref^2/n_ref)`` (sample
    std over each row's seeds), whether the difference exceeds ``z`` standard errors (``"yes"`` /
    ``"no"``; ``"one seed"`` when a row has fewer than 2 seeds, as the main job's seed-0 tables),
    whether the rows' 95% bootstrap intervals over videos (means over seeds) overlap, and the
    paper's difference when ``paper`` has both rows. Pairs naming a row ``runs`` lacks are skipped."""
    import math

    import pandas as pd

    df = pd.DataFrame(runs)
    g = df.groupby("row", sort=False)
    mean, std, n = g[metric].mean(), g[metric].std(ddof=1), g.size()
    has_interval = f"{metric}_low" in df
    lines = []
    for row, ref in pairs:
        if row not in mean or ref not in mean:
            continue
        delta = float(mean[row] - mean[ref])
        se = math.sqrt(std[row] ** 2 / n[row] + std[ref] ** 2 / n[ref]) if min(n[row], n[ref]) > 1 else math.nan
        line = {"row": row, "vs": ref, "seeds": int(min(n[row], n[ref])), f"{metric} diff": delta,
                "seed se": se, f"beyond {z:g} se": "one seed" if math.isnan(se) else ("yes" if abs(delta) > z * se else "no")}
        if has_interval:
            lo, hi = g[f"{metric}_low"].mean(), g[f"{metric}_high"].mean()
            line["intervals overlap"] = "yes" if lo[row] <= hi[ref] and lo[ref] <= hi[row] else "no"
        if paper:
            a, b = paper.get(row, {}).get(metric), paper.get(ref, {}).get(metric)
            line[f"paper {metric} diff"] = None if a is None or b is None else round(a - b, 4)
        lines.append(line)
    return pd.DataFrame(lines)
