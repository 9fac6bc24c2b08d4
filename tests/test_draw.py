"""visrc.viz.draw: the GT-vs-pseudo-label figure of notebook 05."""
import pytest

from visrc.data.ytvis import load_ytvis
from visrc.viz.draw import plot_gt_vs_pseudo


def test_gt_vs_pseudo_shows_the_video_with_most_pseudo_tracks(toy_small):
    gt = load_ytvis(toy_small / "valid" / "instances.json")
    last = gt["videos"][-1]["id"]
    pseudo = dict(gt, annotations=[a for a in gt["annotations"] if a["video_id"] == last])
    fig = plot_gt_vs_pseudo(gt, pseudo, toy_small / "valid" / "JPEGImages", frame=0)
    assert len(fig.axes) == 2
    assert all(f"video {last}, frame 0" in ax.get_title() for ax in fig.axes)
    empty = plot_gt_vs_pseudo(gt, dict(gt, annotations=[]), toy_small / "valid" / "JPEGImages")
    assert len(empty.axes) == 2
    with pytest.raises(ValueError, match="no videos"):
        plot_gt_vs_pseudo(dict(gt, videos=[]), pseudo, toy_small)
