"""Dataset analyses: frame-overlap statistics (the paper's section 3.1, Fig. 2a)."""
from visrc.analysis.overlap import (
    object_overlap,
    overlap_by_category,
    overlap_summary,
    pair_ious,
    plot_overlap_histogram,
)

__all__ = [
    "object_overlap",
    "overlap_by_category",
    "overlap_summary",
    "pair_ious",
    "plot_overlap_histogram",
]
