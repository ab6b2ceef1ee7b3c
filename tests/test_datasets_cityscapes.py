"""Cityscapes preparation (labelTrainIds, depth from disparity + camera json) and detectron2's loaders on it.

Fixture (tests/raw_fixtures.py, 32x64): sky rows 0-7, road rows 16-31, a car cols 8-31 rows 16-23 and a
person cols 40-47 rows 8-23; disparity 8/16/32/64 px by quarter of the width, column 0 invalid."""

import json

import numpy as np
import pytest

from datasets.fileio import read_json
from tests import raw_fixtures as R
from tools import prepare_cityscapes


@pytest.fixture(autouse=True, scope="module")
def _restore_catalog():
    """These tests re-point the catalog at their own roots; give later modules the default registration."""
    yield
    from datasets.builtin import register_all

    register_all()


def read(path):
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("cityscapes")
    R.cityscapes(str(root / "raw"))
    assert (
        prepare_cityscapes.main(
            ["--raw", str(root / "raw"), "--out", str(root / "data" / "cityscapes"), "--workers", "1"]
        )
        == 0
    )
    return root


def test_label_train_ids_follow_cityscapesscripts(tree):
    lab = read(
        tree / "data" / "cityscapes" / "gtFine" / "train" / "aachen" / "aachen_000001_000019_gtFine_labelTrainIds.png"
    )
    assert lab.dtype == np.uint8 and lab.shape == (32, 64)
    assert lab[2, 60] == 10 and lab[28, 60] == 0 and lab[20, 10] == 13 and lab[12, 44] == 11
    assert lab[12, 10] == 255  # nothing drawn there: unlabeled
    assert not (
        tree / "raw" / "gtFine" / "train" / "aachen" / "aachen_000001_000019_gtFine_labelTrainIds.png"
    ).exists()  # the raw tree is left untouched


def test_depth_is_baseline_times_fx_over_disparity(tree):
    depth = read(tree / "data" / "cityscapes" / "depth" / "train" / "aachen" / "aachen_000000_000019_depth.png")
    assert depth.dtype == np.uint16 and depth.shape == (32, 64)
    bf = R.CITYSCAPES_CAMERA["extrinsic"]["baseline"] * R.CITYSCAPES_CAMERA["intrinsic"]["fx"]
    for x, disp in [(5, 8), (20, 16), (40, 32), (63, 64)]:
        assert abs(int(depth[10, x]) - bf / disp * 1000) <= 0.5, x  # 59.2, 29.6, 14.8, 7.4 m
    assert (depth[:, 0] == 0).all()
    recs = read_json(str(tree / "data" / "cityscapes" / "rgbd_train.json"))
    assert [r["image_id"] for r in recs] == ["aachen_000000_000019", "aachen_000001_000019"]
    assert recs[0]["intrinsics"] == [[2262.52, 0.0, 1096.98], [0.0, 2265.3017905988554, 513.137], [0.0, 0.0, 1.0]]


def test_detectron2_loaders_read_the_prepared_tree(tree):
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from pycocotools import mask as mask_util

    from datasets.builtin import register_all

    names = register_all(str(tree / "data"))
    assert {
        "cityscapes_rgbd_train",
        "cityscapes_fine_sem_seg_train",
        "cityscapes_fine_sem_seg_val",
        "cityscapes_fine_instance_seg_train",
        "cityscapes_fine_instance_seg_val",
    } <= set(names)
    sem = DatasetCatalog.get("cityscapes_fine_sem_seg_val")
    assert len(sem) == 1 and sem[0]["image_id"] == "frankfurt_000000_000019"
    assert sem[0]["sem_seg_file_name"].endswith("frankfurt_000000_000019_gtFine_labelTrainIds.png")
    meta = MetadataCatalog.get("cityscapes_fine_sem_seg_val")
    assert meta.evaluator_type == "cityscapes_sem_seg" and meta.stuff_colors[0] == (128, 64, 128)
    assert meta.gt_dir.startswith(str(tree / "data" / "cityscapes"))
    inst = DatasetCatalog.get("cityscapes_fine_instance_seg_train")
    anns = sorted(inst[0]["annotations"], key=lambda a: a["category_id"])
    assert [a["category_id"] for a in anns] == [0, 2]  # person, car
    car = mask_util.decode(anns[1]["segmentation"])
    assert car.sum() == 24 * 8 and car[16:24, 8:32].all() and isinstance(anns[1]["segmentation"]["counts"], str)
    rgbd = DatasetCatalog.get("cityscapes_rgbd_train")
    assert len(rgbd) == 2 and rgbd[0]["depth_file_name"].endswith("aachen_000000_000019_depth.png")


def test_missing_disparity_is_named(tmp_path, tree, capsys):
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(tree / "raw", raw)
    gone = raw / "disparity" / "train" / "aachen" / "aachen_000001_000019_disparity.png"
    gone.unlink()
    assert prepare_cityscapes.main(["--raw", str(raw), "--out", str(raw), "--workers", "1"]) == 1
    assert f"{gone}: missing" in capsys.readouterr().err
    assert read_json(str(raw / "meta.json"))["complete"] is False
    # in place (--out = --raw): labelTrainIds land beside the raw gtFine files, as cityscapesscripts does
    assert (raw / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000019_gtFine_labelTrainIds.png").exists()


@pytest.fixture
def raw_copy(tmp_path, tree):
    import shutil

    shutil.copytree(tree / "raw", tmp_path / "raw")
    return tmp_path / "raw"


def prepare(raw, out):
    return prepare_cityscapes.main(["--raw", str(raw), "--out", str(out), "--workers", "1"])


def test_label_ids_stand_in_for_absent_polygons(raw_copy, tree, tmp_path):
    from detectron2.data import DatasetCatalog

    from datasets.builtin import register_all

    for f in raw_copy.rglob("*_gtFine_polygons.json"):
        f.unlink()
    assert prepare(raw_copy, tmp_path / "data" / "cityscapes") == 0
    for f in (tree / "data" / "cityscapes" / "gtFine").rglob("*_labelTrainIds.png"):
        same = tmp_path / "data" / f.relative_to(tree / "data")
        assert (read(same) == read(f)).all(), same  # the label table gives what the polygons give
    register_all(str(tmp_path / "data"))
    assert DatasetCatalog.get("cityscapes_fine_sem_seg_val")[0]["height"] == 32
    anns = DatasetCatalog.get("cityscapes_fine_instance_seg_train")[0]["annotations"]
    assert sorted(a["category_id"] for a in anns) == [0, 2]


def test_absent_polygons_and_label_ids_are_named(raw_copy, tmp_path, capsys):
    stem = raw_copy / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000019_gtFine_"
    (stem.parent / (stem.name + "polygons.json")).unlink()
    (stem.parent / (stem.name + "labelIds.png")).unlink()
    assert prepare(raw_copy, tmp_path / "out") == 1
    assert (
        f"{stem}polygons.json: missing, and so is frankfurt_000000_000019_gtFine_labelIds.png"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("field,value", [("baseline", 0.0), ("fx", -2262.52)])
def test_camera_without_positive_baseline_or_fx_is_an_error(raw_copy, tmp_path, capsys, field, value):
    cam = raw_copy / "camera" / "train" / "aachen" / "aachen_000001_000019_camera.json"
    bad = {k: dict(v) for k, v in R.CITYSCAPES_CAMERA.items()}
    bad["extrinsic" if field == "baseline" else "intrinsic"][field] = value
    cam.write_text(json.dumps(bad))
    out = tmp_path / "out"
    assert prepare(raw_copy, out) == 1
    assert f"{cam}: baseline" in capsys.readouterr().err
    assert not (out / "depth" / "train" / "aachen" / "aachen_000001_000019_depth.png").exists()
    assert read_json(str(out / "meta.json"))["complete"] is False


def test_truncated_left_image_is_an_error(raw_copy, tmp_path, capsys):
    img = raw_copy / "leftImg8bit" / "val" / "frankfurt" / "frankfurt_000000_000019_leftImg8bit.png"
    img.write_bytes(img.read_bytes()[:-40])
    out = tmp_path / "out"
    assert prepare(raw_copy, out) == 1
    assert f"{img}: truncated or corrupt PNG" in capsys.readouterr().err
    assert read_json(str(out / "meta.json"))["complete"] is False


def test_temps_of_an_interrupted_run_are_removed_at_the_next_start(raw_copy, tmp_path):
    out = tmp_path / "out"
    assert prepare(raw_copy, out) == 0
    depth_dir = out / "depth" / "train" / "aachen"
    temps = [depth_dir / ".aachen_000000_000019_depth.png.k3j9x.tmp", out / ".rgbd_val.json.q1w2e3.tmp"]
    for t in temps:
        t.write_bytes(b"half")
    (depth_dir / "aachen_000000_000019_depth.png").unlink()  # the write that was interrupted
    assert prepare(raw_copy, out) == 0
    assert not any(t.exists() for t in temps)
    assert read(depth_dir / "aachen_000000_000019_depth.png").any()
