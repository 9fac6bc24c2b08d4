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


# OpenImages display name -> YouTube-VIS 2021 class, written out by hand: the direct counterpart of
# every 2021 class (finer OpenImages classes such as Brown bear or Sea turtle map too, see the table).
OPENIMAGES_TO_2021 = {
    "Airplane": "airplane", "Bear": "bear", "Bird": "bird", "Boat": "boat", "Car": "car", "Cat": "cat",
    "Cattle": "cow", "Deer": "deer", "Dog": "dog", "Duck": "duck", "Harbor seal": "earless_seal",
    "Elephant": "elephant", "Fish": "fish", "Flying disc": "flying_disc", "Fox": "fox", "Frog": "frog",
    "Panda": "giant_panda", "Giraffe": "giraffe", "Horse": "horse", "Leopard": "leopard", "Lizard": "lizard",
    "Monkey": "monkey", "Motorcycle": "motorbike", "Mouse": "mouse", "Parrot": "parrot", "Person": "person",
    "Rabbit": "rabbit", "Shark": "shark", "Skateboard": "skateboard", "Snake": "snake", "Snowboard": "snowboard",
    "Squirrel": "squirrel", "Surfboard": "surfboard", "Tennis racket": "tennis_racket", "Tiger": "tiger",
    "Train": "train", "Truck": "truck", "Turtle": "turtle", "Whale": "whale", "Zebra": "zebra",
}
# look-alike names that must never become a target class
OPENIMAGES_NEVER_TARGET = ("Computer mouse", "Teddy bear", "Table tennis racket", "Red panda")


def test_every_2021_class_has_its_openimages_counterpart():
    classes = ytvis_classes("2021")
    assert sorted(OPENIMAGES_TO_2021.values()) == sorted(classes)
    rows = {r["source_name"]: r["source_id"] for r in load_category_table("openimages")}
    cmap = load_category_map("openimages", "2021")
    for name, target in OPENIMAGES_TO_2021.items():
        assert name in rows, name
        assert cmap[rows[name]] == classes.index(target), name
    for name in OPENIMAGES_NEVER_TARGET:
        assert not isinstance(cmap[rows[name]], int), name
    # the converter's output names categories by display name and MID: the MID decides
    got = category_map_for([{"id": 1, "name": "Mouse", "mid": "/m/020lf"}, {"id": 2, "name": "x", "mid": "/m/04rmv"}],
                           "openimages")
    assert got == {1: AUX, 2: classes.index("mouse")}


def test_coco_names_through_the_msd_loader(tmp_path):
    """COCO 2017's real ids and names in an instances JSON, read by the MSD loader with the table:
    every 2021 counterpart gets its class, the 59 others the auxiliary placeholder C."""
    import json

    from realformat import COCO_CATEGORIES

    from visrc.data.category_tables import non_target_classes
    from visrc.data.msd import load_coco_style

    classes = ytvis_classes("2021")
    w = 64
    images = [{"id": k, "file_name": f"{k:012d}.jpg", "height": 32, "width": w} for k, _, _ in COCO_CATEGORIES]
    anns = [{"id": k, "image_id": k, "category_id": k, "bbox": [2, 2, 20, 20], "iscrowd": 0,
             "segmentation": [[2, 2, 22, 2, 22, 22, 2, 22]]} for k, _, _ in COCO_CATEGORIES]
    path = tmp_path / "instances_train2017.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": k, "name": n, "supercategory": s} for k, n, s in COCO_CATEGORIES]}))
    samples = load_coco_style(str(path), "", classes, 59, "coco", category_table="2021")
    label = {s["instances"][0]["category_id"]: s["instances"][0]["bbox_label"] for s in samples}
    name = {k: n for k, n, _ in COCO_CATEGORIES}
    got = {name[k]: classes[v] for k, v in label.items() if v < len(classes)}
    assert got == COCO_TO_2021
    assert sorted(name[k] for k, v in label.items() if v == len(classes)) == sorted(non_target_classes("coco", "2021"))
    assert label[74] == len(classes)                                     # mouse: auxiliary, never the animal
    # with K = 0 non-target objects are dropped; require_target drops images left with none
    assert len(load_coco_style(str(path), "", classes, 0, "coco", category_table="2021")) == 21
    assert len(load_coco_style(str(path), "", classes, 59, "coco", category_table="2021", require_target=True)) == 21
