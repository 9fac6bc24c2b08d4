"""visrc.analysis.overlap: per-object consecutive-frame box IoU (paper section 3.1, Fig. 2a)."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from visrc.analysis import overlap as ov  # noqa: E402
from visrc.data.ytvis import validate_ytvis  # noqa: E402


def make_data(tracks: list[list], video_of: list[int] | None = None, cats: list[int] | None = None,
              size: tuple[int, int] = (100, 100)) -> dict:
    """A valid YouTube-VIS dict: one annotation per entry of ``tracks`` (its ``bboxes``)."""
    video_of = video_of or [1] * len(tracks)
    cats = cats or [1] * len(tracks)
    lengths: dict[int, int] = {}
    for v, boxes in zip(video_of, tracks):
        assert lengths.setdefault(v, len(boxes)) == len(boxes), "tracks of one video share its length"
    h, w = size
    videos = [{"id": v, "length": n, "height": h, "width": w,
               "file_names": [f"v{v}/{t:05d}.jpg" for t in range(n)]} for v, n in lengths.items()]
    anns = [{"id": 10 + i, "video_id": v, "category_id": c, "iscrowd": 0,
             "segmentations": [None] * len(b), "bboxes": b,
             "areas": [None if x is None else x[2] * x[3] for x in b]}
            for i, (b, v, c) in enumerate(zip(tracks, video_of, cats))]
    data = {"videos": videos, "annotations": anns,
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    validate_ytvis(data)
    return data


def loop_iou(a, b) -> float:
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    iw = min(ax0 + aw, bx0 + bw) - max(ax0, bx0)
    ih = min(ay0 + ah, by0 + bh) - max(ay0, by0)
    inter = max(iw, 0.0) * max(ih, 0.0)
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def loop_reference(data: dict, bridge_gaps: bool = True) -> list[tuple[int, float]]:
    """(n_pairs, mean IoU) per annotation, one object at a time."""
    out = []
    for ann in data["annotations"]:
        ious, prev, prev_t = [], None, None
        for t, box in enumerate(ann["bboxes"]):
            if box is None:
                continue
            if prev is not None and (bridge_gaps or t - prev_t == 1):
                ious.append(loop_iou(prev, box))
            prev, prev_t = box, t
        out.append((len(ious), sum(ious) / len(ious) if ious else math.nan))
    return out


# --- per object ----------------------------------------------------------------------------------

def test_hand_made_objects():
    box = [10, 10, 20, 20]
    data = make_data([
        [box, box, box, box],                                   # static: 1
        [[0, 0, 10, 10], [5, 0, 10, 10], [10, 0, 10, 10]],      # two half shifts: 1/3 each
        [[0, 0, 10, 10], [50, 50, 10, 10], [0, 0, 10, 10]],     # jumps: 0
    ], video_of=[1, 2, 3], cats=[1, 2, 1])
    df = ov.object_overlap(data)
    assert list(df.columns) == ["video_id", "annotation_id", "category_id", "n_frames", "n_pairs", "mean_iou"]
    assert df["video_id"].tolist() == [1, 2, 3]
    assert df["annotation_id"].tolist() == [10, 11, 12]
    assert df["category_id"].tolist() == [1, 2, 1]
    assert df["n_frames"].tolist() == [4, 3, 3]
    assert df["n_pairs"].tolist() == [3, 2, 2]
    np.testing.assert_allclose(df["mean_iou"], [1.0, 1 / 3, 0.0])


def test_mean_is_over_pairs_of_one_object():
    # IoUs 1, 1/3 -> mean 2/3
    data = make_data([[[0, 0, 10, 10], [0, 0, 10, 10], [5, 0, 10, 10]]])
    assert ov.object_overlap(data)["mean_iou"].iloc[0] == pytest.approx(2 / 3)


def test_gaps_bridged_by_default():
    # absent at frames 1-2: the pair is (0, 3) -> IoU 1/3; then (3, 4) -> 1
    data = make_data([[[0, 0, 10, 10], None, None, [5, 0, 10, 10], [5, 0, 10, 10]]])
    df = ov.object_overlap(data)
    assert df["n_frames"].iloc[0] == 3
    assert df["n_pairs"].iloc[0] == 2
    assert df["mean_iou"].iloc[0] == pytest.approx((1 / 3 + 1) / 2)


def test_gaps_not_bridged_when_asked():
    data = make_data([
        [[0, 0, 10, 10], None, None, [5, 0, 10, 10], [5, 0, 10, 10]],
        [[0, 0, 10, 10], None, [0, 0, 10, 10], None, [0, 0, 10, 10]],  # never two adjacent frames
    ], video_of=[1, 1])
    df = ov.object_overlap(data, bridge_gaps=False)
    assert df["n_pairs"].tolist() == [1, 0]
    assert df["mean_iou"].iloc[0] == pytest.approx(1.0)
    assert math.isnan(df["mean_iou"].iloc[1])


def test_leading_and_trailing_absence_ignored():
    data = make_data([[None, None, [0, 0, 10, 10], [5, 0, 10, 10], None]])
    df = ov.object_overlap(data)
    assert df["n_pairs"].iloc[0] == 1
    assert df["mean_iou"].iloc[0] == pytest.approx(1 / 3)


def test_single_frame_and_empty_objects_are_nan_and_counted_separately():
    box = [0, 0, 10, 10]
    data = make_data([
        [None, box, None, None],     # one annotated frame
        [None, None, None, None],    # never annotated
        [box, box, box, box],        # measured, 1.0
        [box, [5, 0, 10, 10], None, None],  # measured, 1/3
    ], video_of=[1, 1, 1, 1])
    df = ov.object_overlap(data)
    assert df["n_frames"].tolist() == [1, 0, 4, 2]
    assert df["n_pairs"].tolist() == [0, 0, 3, 1]
    assert df["mean_iou"].isna().tolist() == [True, True, False, False]
    s = ov.overlap_summary(df, threshold=0.8)
    assert s["n_objects"] == 4
    assert s["n_measured"] == 2
    assert s["n_unmeasured"] == 2
    assert s["n_above"] == 1
    assert s["share_above"] == pytest.approx(0.5)
    assert s["mean_iou"] == pytest.approx((1 + 1 / 3) / 2)
    assert s["median_iou"] == pytest.approx((1 + 1 / 3) / 2)
    assert s["n_videos"] == 1


def test_threshold_is_inclusive():
    df = pd.DataFrame({"video_id": [1, 1, 2], "annotation_id": [1, 2, 3], "category_id": [1, 1, 1],
                       "n_frames": [2, 2, 2], "n_pairs": [1, 1, 1], "mean_iou": [0.8, 0.79, 0.9]})
    s = ov.overlap_summary(df, threshold=0.8)
    assert s["n_above"] == 2
    assert s["share_above"] == pytest.approx(2 / 3)


def test_no_annotations():
    data = {"videos": [], "annotations": [], "categories": []}
    df = ov.object_overlap(data)
    assert len(df) == 0
    assert list(df.columns) == list(ov.COLUMNS)
    s = ov.overlap_summary(df)
    assert s["n_objects"] == 0 and s["n_measured"] == 0
    assert math.isnan(s["share_above"]) and math.isnan(s["mean_iou"])
    plt.close(ov.plot_overlap_histogram(df))


def test_only_bboxes_are_read():
    data = make_data([[[0, 0, 10, 10], [5, 0, 10, 10]]])
    for ann in data["annotations"]:
        del ann["segmentations"], ann["areas"]
    assert ov.object_overlap(data)["mean_iou"].iloc[0] == pytest.approx(1 / 3)


def test_malformed_box_names_the_annotation():
    data = {"annotations": [{"id": 7, "video_id": 1, "category_id": 1,
                             "bboxes": [[0, 0, 10, 10], [0, 0, 10]]}]}
    with pytest.raises(ValueError, match=r"annotation id=7.*'bboxes'\[1\]"):
        ov.object_overlap(data)


def random_data(seed: int, n_videos: int = 40) -> dict:
    rng = np.random.default_rng(seed)
    tracks, video_of, cats = [], [], []
    for v in range(1, n_videos + 1):
        n = int(rng.integers(1, 25))
        for _ in range(int(rng.integers(0, 4))):
            xy = rng.uniform(0, 60, 2)
            wh = rng.uniform(0, 30, 2)
            boxes = []
            for _t in range(n):
                xy = np.clip(xy + rng.normal(0, 3, 2), 0, 60)
                wh = np.clip(wh + rng.normal(0, 2, 2), 0, 40)
                boxes.append(None if rng.random() < 0.3 else [*xy.tolist(), *wh.tolist()])
            tracks.append(boxes)
            video_of.append(v)
            cats.append(int(rng.integers(1, 3)))
    data = make_data(tracks, video_of, cats)
    # videos with no object still belong to the file
    data["videos"].append({"id": 999, "length": 1, "height": 100, "width": 100, "file_names": ["x.jpg"]})
    return data


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("bridge_gaps", [True, False])
def test_agrees_with_loop_on_random_data(seed, bridge_gaps):
    data = random_data(seed)
    df = ov.object_overlap(data, bridge_gaps=bridge_gaps)
    ref = loop_reference(data, bridge_gaps=bridge_gaps)
    assert len(df) == len(data["annotations"])
    assert df["n_pairs"].tolist() == [n for n, _ in ref]
    np.testing.assert_allclose(df["mean_iou"].to_numpy(), [m for _, m in ref], rtol=1e-12, atol=1e-12)
    assert df["mean_iou"].dropna().between(0, 1).all()


def test_pair_ious_order_and_tracks():
    data = make_data([[[0, 0, 10, 10], [5, 0, 10, 10], None], [[0, 0, 10, 10], None, [0, 0, 10, 10]]],
                     video_of=[1, 1])
    track, iou = ov.pair_ious(data)
    assert track.tolist() == [0, 1]
    np.testing.assert_allclose(iou, [1 / 3, 1.0])


def test_by_category():
    data = make_data([
        [[0, 0, 10, 10]] * 3,
        [[0, 0, 10, 10], [5, 0, 10, 10]],
        [[0, 0, 10, 10], [0, 0, 10, 10]],
        [[0, 0, 10, 10], None],
    ], video_of=[1, 2, 3, 4], cats=[1, 1, 2, 2])
    df = ov.object_overlap(data)
    t = ov.overlap_by_category(df, data["categories"])
    assert t.index.tolist() == [1, 2]
    assert t["name"].tolist() == ["cat", "dog"]
    assert t["n_objects"].tolist() == [2, 1]
    np.testing.assert_allclose(t["mean_iou"], [(1 + 1 / 3) / 2, 1.0])
    np.testing.assert_allclose(t["share_above"], [0.5, 1.0])


# --- plot ----------------------------------------------------------------------------------------

def test_histogram_counts_measured_objects_only(tmp_path, monkeypatch):
    df = ov.object_overlap(random_data(3, n_videos=60))
    fig = ov.plot_overlap_histogram(df, bins=10, threshold=0.8)
    try:
        ax = fig.axes[0]
        heights = [p.get_height() for p in ax.patches]
        assert len(heights) == 10
        assert sum(heights) == df["mean_iou"].notna().sum()
        assert ax.get_xlim() == (0.0, 1.0)
        legend = " ".join(t.get_text() for t in ax.get_legend().get_texts())
        assert f"{int(df['mean_iou'].isna().sum())} with < 2 annotated frames" in legend
        share = ov.overlap_summary(df)["share_above"]
        assert f"{100 * share:.1f}%" in legend
        # the notebook saves through visrc.viz.plots.savefig
        monkeypatch.setenv("VISRC_FIGURES_DIR", str(tmp_path))
        from visrc.viz.plots import savefig

        assert savefig(fig, "overlap_histogram_test").stat().st_size > 0
    finally:
        plt.close(fig)


def test_histogram_on_given_axes():
    df = ov.object_overlap(random_data(4))
    fig, (a1, a2) = plt.subplots(1, 2)
    try:
        assert ov.plot_overlap_histogram(df, ax=a2, threshold=None, title=None) is fig
        assert len(a2.patches) == 20 and len(a1.patches) == 0
        assert not a2.lines  # no threshold line
    finally:
        plt.close(fig)


def test_on_toy_benchmark(toy_small):
    """The notebook's default data: the toy train split loads, agrees with the loop, and is redundant."""
    from visrc.data.ytvis import load_ytvis

    data = load_ytvis(toy_small / "train" / "instances.json")
    df = ov.object_overlap(data)
    ref = loop_reference(data)
    assert df["n_pairs"].tolist() == [n for n, _ in ref]
    np.testing.assert_allclose(df["mean_iou"].to_numpy(), [m for _, m in ref], rtol=1e-12, atol=1e-12)
    s = ov.overlap_summary(df)
    assert s["n_measured"] > 0
    assert 0.0 <= s["share_above"] <= 1.0
