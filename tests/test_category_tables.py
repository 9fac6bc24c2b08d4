"""The reviewed COCO / OpenImages -> YouTube-VIS category tables (visrc/data/category_maps/*.csv)."""
import csv
import re
from collections import Counter

import pytest

from visrc.data.categories import AUX, COCO_ALIASES, build_category_map
from visrc.data.category_tables import (TABLE_DIR, TABLES, VERSIONS, category_map_for, load_category_map,
                                        load_category_table, ytvis_classes)

# COCO 2017 name -> YouTube-VIS 2021 class, written out by hand: every 2021 class with a COCO counterpart.
COCO_TO_2021 = {
    "person": "person", "bird": "bird", "cat": "cat", "dog": "dog", "horse": "horse", "cow": "cow",
    "elephant": "elephant", "bear": "bear", "zebra": "zebra", "giraffe": "giraffe", "airplane": "airplane",
    "boat": "boat", "train": "train", "truck": "truck", "car": "car", "motorcycle": "motorbike",
    "frisbee": "flying_disc", "skateboard": "skateboard", "surfboard": "surfboard", "snowboard": "snowboard",
    "tennis racket": "tennis_racket",
}
COCO_TO_2019 = {**{k: v for k, v in COCO_TO_2021.items() if k not in ("bird", "frisbee", "car")}, "car": "sedan"}
COCO_NEVER_TARGET = ("mouse", "teddy bear", "sheep")


@pytest.fixture(scope="module")
def coco_rows():
    return load_category_table("coco")


def test_coco_table_lists_the_80_classes_once(coco_rows):
    ids = [r["source_id"] for r in coco_rows]
    assert len(ids) == 80 and len(set(ids)) == 80
    assert len({r["source_name"] for r in coco_rows}) == 80
    # COCO 2017's 80 ids run 1..90 with ten gaps
    assert set(range(1, 91)) - set(ids) == {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
    by_id = {r["source_id"]: r["source_name"] for r in coco_rows}
    assert (by_id[1], by_id[34], by_id[74], by_id[88], by_id[90]) == ("person", "frisbee", "mouse", "teddy bear",
                                                                      "toothbrush")


@pytest.mark.parametrize("version, expected", [("2021", COCO_TO_2021), ("2019", COCO_TO_2019)])
def test_coco_counterparts_map_to_their_class(coco_rows, version, expected):
    classes = ytvis_classes(version)
    cmap = load_category_map("coco", version)
    name_of = {r["source_id"]: r["source_name"] for r in coco_rows}
    got = {name_of[i]: classes[t] for i, t in cmap.items() if isinstance(t, int)}
    assert got == expected
    for name in COCO_NEVER_TARGET + (("bird", "frisbee") if version == "2019" else ()):
        i = next(i for i, n in name_of.items() if n == name)
        assert cmap[i] == AUX, name
    assert set(cmap.values()) <= set(range(len(classes))) | {AUX}   # no COCO class is dropped


def test_coco_mouse_is_never_the_animal():
    for version in VERSIONS:
        assert load_category_map("coco", version)[74] == AUX
        assert load_category_map("coco", version, unmatched="ignore")[74] is None


def test_every_target_name_exists():
    for source, fname in TABLES.items():
        with open(TABLE_DIR / fname, newline="") as f:
            rows = list(csv.DictReader(f))
        for version in VERSIONS:
            allowed = set(ytvis_classes(version)) | {"aux", "ignore"}
            bad = [(r["source_name"], r[f"ytvis{version}"]) for r in rows if r[f"ytvis{version}"] not in allowed]
            assert not bad, f"{fname} ytvis{version}: unknown targets {bad}"
            load_category_map(source, version)       # raises on an unknown target


@pytest.mark.parametrize("version", VERSIONS)
def test_table_agrees_with_build_category_map_on_coco_names(coco_rows, version):
    cats = [{"id": r["source_id"], "name": r["source_name"]} for r in coco_rows]
    classes = ytvis_classes(version)
    for unmatched in ("aux", "ignore"):
        assert load_category_map("coco", version, unmatched) == build_category_map(cats, classes, COCO_ALIASES,
                                                                                   unmatched)


def test_openimages_table():
    rows = load_category_table("openimages")
    mids = [r["source_id"] for r in rows]
    assert len(mids) == len(set(mids)) and all(re.fullmatch(r"/m/0[0-9a-z_]+", m) for m in mids)
    assert all(n == 1 for n in Counter(r["source_name"] for r in rows).values())
    classes = ytvis_classes("2021")
    cmap = load_category_map("openimages", "2021")
    label = {m: classes[t] for m, t in cmap.items() if isinstance(t, int)}
    assert label["/m/0bt9lr"] == "dog" and label["/m/01yrx"] == "cat" and label["/m/04_sv"] == "motorbike"
    assert label["/m/02wmf"] == "flying_disc" and label["/m/03bj1"] == "giant_panda"
    assert label["/m/04rmv"] == "mouse" and cmap["/m/020lf"] == AUX          # the animal vs the computer mouse
    assert cmap["/m/0kmg4"] == AUX and cmap["/m/0jbk"] is None               # teddy bear; 'Animal' (a parent)
    assert set(label.values()) == set(classes)                               # every 2021 class has a source
    c19 = ytvis_classes("2019")
    m19 = load_category_map("openimages", "2019")
    assert c19[m19["/m/0k4j"]] == "sedan" and c19[m19["/m/0k65p"]] == "hand" and m19["/m/015p6"] is None


def test_category_map_for_matches_by_name_and_mid():
    classes = ytvis_classes("2021")
    coco = category_map_for([{"id": 100, "name": "Motorcycle"}, {"id": 5, "name": "mouse"},
                             {"id": 6, "name": "not a coco class"}], "coco")
    assert coco == {100: classes.index("motorbike"), 5: AUX, 6: AUX}
    oi = category_map_for([{"id": 1, "name": "/m/0bt9lr"}, {"id": 2, "name": "Computer mouse"},
                           {"id": 3, "name": "Human face"}, {"id": 4, "name": "Rhinoceros"}], "openimages",
                          unmatched="ignore")
    assert oi == {1: classes.index("dog"), 2: None, 3: None, 4: None}


def test_bad_arguments():
    with pytest.raises(ValueError, match="source"):
        load_category_map("lvis")
    with pytest.raises(ValueError, match="version"):
        load_category_map("coco", "2022")
    with pytest.raises(ValueError, match="not one of"):
        load_category_map("coco", "2021", target_classes=["person"])
