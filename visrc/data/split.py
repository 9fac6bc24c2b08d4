"""A local held-out split of a YouTube-VIS train file (the official valid/test GT is private).

:func:`split_train` carves a deterministic set of videos out of the train annotations so a model
trained on the rest can be scored locally (``visrc evaluate --gt heldout.json``). The split is a
function of the sorted video ids, each video's categories, ``fraction`` and ``seed`` only (never of
the order of the file), every annotation follows its video, and both parts keep the full category
list. It is stratified: every category found in two or more videos keeps at least one video on
each side whenever the other categories allow it.
"""
from __future__ import annotations


import numpy as np

__all__ = ["split_train", "split_summary"]


def _video_categories(data: dict) -> dict[int, set[int]]:
    cats: dict[int, set[int]] = {int(v["id"]): set() for v in data["videos"]}
    for ann in data.get("annotations", []):
        cats[int(ann["video_id"])].add(int(ann["category_id"]))
    return cats


def held_out_video_ids(data: dict, fraction: float = 0.1, seed: int = 0) -> list[int]:
    """The ids of the held-out videos, sorted. See :func:`split_train`."""
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    cats = _video_categories(data)
    ids = sorted(cats)
    if len(ids) < 2:
        raise ValueError(f"need at least 2 videos to split, got {len(ids)}")
    if len(set(ids)) != len(data["videos"]):
        raise ValueError("duplicate video ids")
    target = min(max(int(round(fraction * len(ids))), 1), len(ids) - 1)
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    rank = {v: r for r, v in enumerate(order)}

    total: dict[int, int] = {}
    for v in ids:
        for c in cats[v]:
            total[c] = total.get(c, 0) + 1
    in_train = dict(total)                           # category -> videos left on the train side
    held: set[int] = set()

    def movable(v: int) -> bool:
        """Moving ``v`` leaves every category of two or more videos a train video."""
        return all(in_train[c] > 1 or total[c] < 2 for c in cats[v])

    def move(v: int) -> None:
        held.add(v)
        for c in cats[v]:
            in_train[c] -= 1

    # 1. coverage: each category of >= 2 videos gets a held-out video (rarest first; a video covering
    #    several categories counts for all of them).
    for c in sorted((c for c in total if total[c] >= 2), key=lambda c: (total[c], c)):
        if any(c in cats[v] for v in held):
            continue
        for v in sorted((v for v in ids if c in cats[v] and v not in held), key=rank.__getitem__):
            if movable(v):
                move(v)
                break
    # 2. fill up to the requested size in the seeded order.
    for v in order:
        if len(held) >= target:
            break
        if v not in held and movable(v):
            move(v)
    return sorted(held)


def split_train(data: dict, fraction: float = 0.1, seed: int = 0) -> tuple[dict, dict]:
    """Split a YouTube-VIS annotation dict into ``(train_part, heldout_part)`` by video.

    Args:
        data: a YouTube-VIS dict (``videos``, ``annotations``, ``categories``, ...).
        fraction: share of the videos to hold out, rounded, at least one video and at most all but
            one. The stratification may hold out a few more videos than that (at most one per
            category) when the fraction is too small to give every category a held-out video.
        seed: seed of the shuffle that picks the videos.

    Returns:
        Two dicts with every top-level field of ``data`` (``info``, ``licenses``, ... copied
        as is), all of its ``categories``, and the videos (file order kept) and annotations of
        their side. The records are shared with ``data``, not copied; ``data`` is not modified.
    """
    held = set(held_out_video_ids(data, fraction, seed))
    parts = []
    for keep in (lambda v: v not in held, lambda v: v in held):
        part = {k: v for k, v in data.items() if k not in ("videos", "annotations", "categories")}
        part["videos"] = [v for v in data["videos"] if keep(int(v["id"]))]
        part["annotations"] = [a for a in data.get("annotations", []) if keep(int(a["video_id"]))]
        part["categories"] = list(data["categories"])
        parts.append(part)
    return parts[0], parts[1]


def split_summary(train_part: dict, heldout_part: dict) -> dict:
    """Counts of both parts and the categories present on one side only (by name)."""
    def cats(d: dict) -> set[int]:
        return {int(a["category_id"]) for a in d.get("annotations", [])}

    names = {int(c["id"]): c["name"] for c in train_part["categories"]}
    tr, ho = cats(train_part), cats(heldout_part)
    return {
        "train": {"videos": len(train_part["videos"]), "annotations": len(train_part["annotations"]),
                  "categories": len(tr)},
        "heldout": {"videos": len(heldout_part["videos"]), "annotations": len(heldout_part["annotations"]),
                    "categories": len(ho)},
        "train_only": sorted(names.get(c, str(c)) for c in tr - ho),
        "heldout_only": sorted(names.get(c, str(c)) for c in ho - tr),
    }
