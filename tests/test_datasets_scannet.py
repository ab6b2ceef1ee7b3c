"""ScanNet preparation (both official layouts) and registration, on tiny trees with known content.

Fixture geometry (tests/raw_fixtures.py): colour and labels 96x128, depth 48x64, so the prepared frames
are 48x64 and every rectangle lands on exact pixel rows/columns: wall rows 0-23, floor rows 36-47, and in
rows 24-35 chair cols 0-15, monitor cols 16-31, table cols 32-63; picture rows 6-17 cols 16-31; a tiny chair
rows 0-2 cols 56-57 (6 px)."""

import os
import shutil

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_util

from tests import raw_fixtures as R
from tools import prepare_scannet


@pytest.fixture(autouse=True, scope="module")
def _restore_catalog():
    """These tests re-point the catalog at their own roots; give later modules the default registration."""
    yield
    from datasets.builtin import register_all

    register_all()


def prep(raw, out, *extra):
    return prepare_scannet.main(["--raw", str(raw), "--out", str(out), "--frame-skip", "1", "--workers", "1", *extra])


def read(path):
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("scannet")
    R.scannet_export(str(root / "raw"))
    assert prep(root / "raw", root / "data" / "scannet") == 0
    return root


def frame(tree, kind, scene="scene0000_00", stem="1", ext=".png"):
    return tree / "data" / "scannet" / "scenes" / scene / kind / (stem + ext)


def test_labels_map_scannet_ids_through_nyu40_to_the_20_classes(tree):
    lab = read(frame(tree, "label"))
    assert lab.dtype == np.uint8 and lab.shape == (48, 64)
    assert (lab[36:] == 1).all()  # floor: nyu40 2
    assert (lab[24:36, 0:16] == 4).all()  # chair: nyu40 5
    assert (lab[24:36, 16:32] == 255).all()  # monitor: nyu40 40 (otherprop) is not a benchmark class
    assert (lab[24:36, 32:] == 6).all()  # table: nyu40 7
    assert (lab[6:18, 16:32] == 10).all()  # picture: nyu40 11
    assert (lab[0:3, 56:58] == 4).all()  # tiny chair
    assert lab[20, 5] == 0 and lab[3, 56] == 0  # wall: nyu40 1
    assert sorted(np.unique(lab).tolist()) == [0, 1, 4, 6, 10, 255]


def test_depth_is_copied_in_millimetres_and_colour_resized_to_it(tree):
    depth = read(frame(tree, "depth", stem="2"))
    assert depth.dtype == np.uint16
    np.testing.assert_array_equal(depth, R.depth_mm((48, 64), 2))
    assert depth[10, 20] == 1000 + 200 + 700 + 600 and depth[0, 0] == 0
    color = read(frame(tree, "color", ext=".jpg"))
    assert color.shape == (48, 64, 3)
    expected = R.color_image((48, 64), 1)[..., ::-1].astype(int)  # BGR on disk
    assert np.abs(color.astype(int) - expected).mean() < 6


def test_index_records_intrinsics_scaled_to_the_output_and_instances(tree):
    from datasets.fileio import read_json

    meta = read_json(str(tree / "data" / "scannet" / "meta.json"))
    assert meta["complete"] and meta["options"]["prefix"] == "scannet"
    assert meta["splits"] == {"train": ["scene0000_00", "scene0001_00"], "val": ["scene0002_00"]}
    recs = read_json(str(tree / "data" / "scannet" / "index_train.json"))
    assert len(recs) == 6 and {r["image_id"] for r in recs} >= {"scene0000_00_0", "scene0001_00_2"}
    k = np.array(recs[0]["intrinsics"])
    np.testing.assert_allclose(k[0], [1169.621094 * 64 / 1296, 0, 646.295044 * 64 / 1296], rtol=1e-6)
    np.testing.assert_allclose(k[1], [0, 1167.105103 * 48 / 968, 489.927032 * 48 / 968], rtol=1e-6)
    assert "annotations" not in recs[0]  # the light index; instances are stored once per split beside it
    anns = read_json(str(tree / "data" / "scannet" / "instances_train.json"))[recs[0]["image_id"]]
    # chair, table, picture and the tiny chair; wall/floor are stuff, the monitor (otherprop) is no thing
    assert [a["category_id"] for a in anns] == [2, 4, 8, 2]
    chair = mask_util.decode(anns[0]["segmentation"])
    expected = np.zeros((48, 64), np.uint8)
    expected[24:36, 0:16] = 1
    np.testing.assert_array_equal(chair, expected)
    assert anns[0]["bbox"] == [0, 24, 16, 36] and anns[3]["area"] == 6


def test_tiny_instances_are_dropped_by_the_threshold(tmp_path, tree):
    assert prep(tree / "raw", tmp_path / "scannet", "--min-instance-fraction", "0.002") == 0  # 6.1 px
    from datasets.fileio import read_json

    anns = read_json(str(tmp_path / "scannet" / "instances_val.json"))
    assert len(anns) == 3 and all([a["category_id"] for a in a_list] == [2, 4, 8] for a_list in anns.values())


def test_forty_class_option_keeps_otherprop(tmp_path, tree):
    assert prep(tree / "raw", tmp_path / "scannet", "--classes", "40") == 0
    lab = read(tmp_path / "scannet" / "scenes" / "scene0002_00" / "label" / "0.png")
    assert lab[30, 20] == 39 and lab[30, 5] == 4 and lab[40, 0] == 1 and lab[10, 10] == 0


def test_rerun_skips_finished_frames_and_redoes_only_missing_ones(tmp_path, tree, capsys):
    out = tmp_path / "scannet"
    shutil.copytree(tree / "data" / "scannet", out)
    label = out / "scenes" / "scene0001_00" / "label" / "1.png"
    before = label.stat().st_mtime_ns
    (out / "scenes" / "scene0001_00" / "record" / "2.json").unlink()
    capsys.readouterr()
    assert prep(tree / "raw", out) == 0
    summary = capsys.readouterr().out
    assert "1 converted" in summary and "8 already done" in summary
    assert label.stat().st_mtime_ns == before
    assert prep(tree / "raw", out, "--classes", "40") == 1  # other options: refuse to mix
    assert "prepared with options" in capsys.readouterr().err


def _corrupt(raw, kind):
    scene = raw / "scans" / "scene0001_00"
    if kind == "truncated jpeg":
        path = scene / "color" / "1.jpg"
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "8-bit depth":
        path = scene / "depth" / "1.png"
        cv2.imwrite(str(path), np.full((48, 64), 7, np.uint8))
    elif kind == "missing label":
        path = scene / "label-filt" / "1.png"
        path.unlink()
    elif kind == "unknown id":
        path = scene / "label-filt" / "1.png"
        lab, _ = R.object_maps((96, 128))
        lab[0:10, 0:10] = 40  # no tsv row for ScanNet id 40
        cv2.imwrite(str(path), lab)
    elif kind == "8-bit label":  # e.g. NYU40-converted labels put under label-filt
        path = scene / "label-filt" / "1.png"
        cv2.imwrite(str(path), np.full((96, 128), 5, np.uint8))
    elif kind == "size mismatch":
        path = scene / "instance-filt" / "1.png"
        cv2.imwrite(str(path), np.zeros((50, 64), np.uint8))
    elif kind in ("corrupt png", "corrupt depth"):
        path = scene / ("label-filt" if kind == "corrupt png" else "depth") / "1.png"
        data = bytearray(path.read_bytes())
        data[60:80] = b"\x00" * 20  # bit rot inside the image data, the file keeps its size and end
        path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "kind, words",
    [
        ("truncated jpeg", "truncated"),
        ("8-bit depth", "16-bit"),
        ("missing label", "label file is missing"),
        ("unknown id", "[40] are absent"),
        ("8-bit label", "uint16 label PNG"),
        ("size mismatch", "matches neither"),
        ("corrupt png", "decode"),
        ("corrupt depth", "corrupt PNG"),
    ],
)
def test_bad_input_names_the_file_and_leaves_no_trusted_output(tmp_path, tree, capsys, kind, words):
    raw = tmp_path / "raw"
    shutil.copytree(tree / "raw", raw)
    bad = _corrupt(raw, kind)
    out = tmp_path / "scannet"
    capsys.readouterr()
    assert prep(raw, out) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and words in err
    assert not (out / "scenes" / "scene0001_00" / "record" / "1.json").exists()
    assert (out / "scenes" / "scene0001_00" / "record" / "0.json").exists()
    from datasets.fileio import read_json

    assert read_json(str(out / "meta.json"))["complete"] is False  # not registered until fixed
    assert not [p for p in out.rglob(".*.tmp")]
    assert prep(raw, out, "--skip-bad") == 0
    assert len(read_json(str(out / "index_train.json"))) == 5


def test_frames25k_layout_with_two_workers(tmp_path, capsys):
    raw = tmp_path / "raw"
    R.scannet_frames25k(str(raw))
    assert prepare_scannet.main(["--raw", str(raw), "--out", str(tmp_path / "scannet"), "--workers", "2"]) == 0
    assert "'frames25k' layout" in capsys.readouterr().out
    from datasets.fileio import read_json

    recs = read_json(str(tmp_path / "scannet" / "index_train.json"))
    assert [r["frame"] for r in recs] == ["000000", "000100"]
    anns = read_json(str(tmp_path / "scannet" / "instances_train.json"))[recs[1]["image_id"]]
    assert [a["category_id"] for a in anns] == [2, 2, 4, 8]  # sorted by nyu40 * 1000 + id
    lab = read(tmp_path / "scannet" / "scenes" / "scene0001_00" / "label" / "000100.png")
    assert lab[30, 5] == 4 and lab[30, 20] == 255 and lab[40, 0] == 1 and lab[10, 10] == 0


def test_train_subsets_are_deterministic_nested_and_never_empty():
    from datasets.scannet import train_subset

    scenes = [f"scene{i:04d}_00" for i in range(100)]
    subsets = {p: train_subset(scenes, p) for p in (20, 40, 60, 80)}
    assert [len(s) for s in subsets.values()] == [20, 40, 60, 80]
    assert set(subsets[20]) < set(subsets[40]) < set(subsets[60]) < set(subsets[80])
    assert subsets[20] == train_subset(list(reversed(scenes)), 20)
    assert subsets[20] != scenes[:20]  # a shuffle, not the first scenes
    assert len(train_subset(scenes[:2], 20)) == 1


def test_holdout_scenes_for_recipe_selection_are_disjoint_from_fit_and_from_the_20pct_split():
    from datasets.scannet import holdout_split, train_subset

    scenes = [f"scene{i:04d}_00" for i in range(19)]
    fit, holdout = holdout_split(scenes)
    assert len(holdout) == 4 and len(fit) == 15 and sorted(fit + holdout) == scenes
    assert not set(holdout) & set(train_subset(scenes, 20))  # selection never sees the 20 % split's scenes
    assert holdout_split(list(reversed(scenes))) == (fit, holdout)
    assert holdout_split(scenes[:1]) == (scenes[:1], [])  # one scene: nothing to hold out, nothing registered


def test_registered_dicts_follow_the_contract(tree):
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.structures import BoxMode

    from datasets.builtin import register_all

    names = register_all(str(tree / "data"))
    assert {"scannet_rgbd_train", "scannet_sem_seg_val", "scannet_sem_seg_train_20pct", "scannet_instance_val"} <= set(
        names
    )
    sem = DatasetCatalog.get("scannet_sem_seg_train")
    assert len(sem) == 6 and len(DatasetCatalog.get("scannet_rgbd_val")) == 3
    d = sem[0]
    assert {"file_name", "height", "width", "image_id", "depth_file_name", "intrinsics", "sem_seg_file_name"} <= set(
        d
    ) and (d["height"], d["width"]) == (48, 64)
    assert all(os.path.isfile(d[k]) for k in ("file_name", "depth_file_name", "sem_seg_file_name"))
    meta = MetadataCatalog.get("scannet_sem_seg_train")
    assert meta.evaluator_type == "sem_seg" and meta.ignore_label == 255 and len(meta.stuff_classes) == 20
    assert meta.stuff_classes[4] == "chair" and len(meta.stuff_colors) == 20
    inst = DatasetCatalog.get("scannet_instance_val")[0]
    a = inst["annotations"][0]
    assert a["bbox_mode"] == BoxMode.XYXY_ABS and isinstance(a["segmentation"]["counts"], str)
    imeta = MetadataCatalog.get("scannet_instance_val")
    assert imeta.evaluator_type == "coco" and len(imeta.thing_classes) == 18
    assert imeta.thing_classes[a["category_id"]] == "chair" and imeta.thing_dataset_id_to_contiguous_id[5] == 2
    assert len(DatasetCatalog.get("scannet_sem_seg_train_20pct")) == 3  # one of the two training scenes
    fit, holdout = DatasetCatalog.get("scannet_sem_seg_train_fit"), DatasetCatalog.get("scannet_sem_seg_train_holdout")
    assert len(fit) == len(holdout) == 3 and {d["scene_id"] for d in fit}.isdisjoint(d["scene_id"] for d in holdout)
    assert MetadataCatalog.get("scannet_sem_seg_train_holdout").data_fraction == 50
