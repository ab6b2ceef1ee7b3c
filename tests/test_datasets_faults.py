"""Preparations that must fail with a message naming what is wrong: colour and depth of different shapes,
empty splits, depth that holds no valid pixel, a rerun from another label map; and `check_dataset` on an
empty split."""

import errno
import hashlib
import json
import shutil

import cv2
import h5py
import numpy as np
import pytest

from datasets.fileio import read_json
from tests import raw_fixtures as R
from tools import check_dataset, prepare_cityscapes, prepare_nyuv2, prepare_scannet


@pytest.fixture(autouse=True, scope="module")
def _restore_catalog():
    """These tests re-point the catalog at their own roots; give later modules the default registration."""
    yield
    from datasets.builtin import register_all

    register_all()


def prep_scannet(raw, out, *extra):
    return prepare_scannet.main(["--raw", str(raw), "--out", str(out), "--frame-skip", "1", "--workers", "1", *extra])


@pytest.fixture(scope="module")
def scannet_raw(tmp_path_factory):
    return R.scannet_export(str(tmp_path_factory.mktemp("faults") / "raw"), frames=2)


def test_scannet_colour_beside_depth_of_its_aspect_ratio_is_accepted(tmp_path):
    raw = R.scannet_export(
        str(tmp_path / "raw"),
        scenes=("scene0000_00",),
        val_scenes=("scene0001_00",),
        frames=1,
        color_hw=(121, 162),
        depth_hw=(60, 80),
    )  # 1296x968 and 640x480, scaled
    assert prep_scannet(raw, tmp_path / "scannet") == 0
    assert read_json(str(tmp_path / "scannet" / "index_val.json"))[0]["width"] == 80


def test_scannet_depth_of_another_aspect_ratio_names_both_files(tmp_path, scannet_raw, capsys):
    raw = tmp_path / "raw"
    shutil.copytree(scannet_raw, raw)
    depth = raw / "scans" / "scene0001_00" / "depth" / "1.png"
    cv2.imwrite(str(depth), np.full((48, 48), 1000, np.uint16))  # square depth beside 128x96 colour
    assert prep_scannet(raw, tmp_path / "scannet") == 1
    err = capsys.readouterr().err
    assert f"{raw / 'scans' / 'scene0001_00' / 'color' / '1.jpg'} (128x96) and {depth} (48x48)" in err
    assert "differ in aspect ratio by 33.3%" in err


@pytest.mark.parametrize("fault", ["absent scene", "every frame bad"])
def test_scannet_empty_split_is_an_error(tmp_path, scannet_raw, capsys, fault):
    raw = tmp_path / "raw"
    shutil.copytree(scannet_raw, raw)
    val = raw / "scans" / "scene0002_00"
    if fault == "absent scene":
        shutil.rmtree(val)
    else:
        for f in (val / "depth").iterdir():
            f.write_bytes(b"not a png")
    out = tmp_path / "scannet"
    assert prep_scannet(raw, out, "--skip-bad") == 1
    assert f"{out}: the val split has no usable frames" in capsys.readouterr().err
    assert read_json(str(out / "meta.json"))["complete"] is False  # not registered


def test_scannet_split_without_valid_depth_is_an_error(tmp_path, scannet_raw, capsys):
    raw = tmp_path / "raw"
    shutil.copytree(scannet_raw, raw)
    for f in (raw / "scans" / "scene0002_00" / "depth").iterdir():
        cv2.imwrite(str(f), np.zeros((48, 64), np.uint16))
    out = tmp_path / "scannet"
    assert prep_scannet(raw, out) == 1
    assert "no frame of the val split has a valid depth pixel (all 2 depth maps are zero" in capsys.readouterr().err
    assert read_json(str(out / "meta.json"))["complete"] is False


def test_nyuv2_split_without_valid_depth_is_an_error(tmp_path, capsys):
    src = R.nyuv2_mat(str(tmp_path / "raw"))
    with h5py.File(tmp_path / "raw" / "nyu_depth_v2_labeled.mat", "r+") as f:
        f["depths"][1] = 0  # images 2 and 4 are the test split
        f["depths"][3] = 0
    out = tmp_path / "nyuv2"
    assert (
        prepare_nyuv2.main(
            [
                "--mat",
                f"{src}/nyu_depth_v2_labeled.mat",
                "--splits",
                f"{src}/splits.mat",
                "--mapping",
                f"{src}/classMapping40.mat",
                "--out",
                str(out),
                "--workers",
                "1",
            ]
        )
        == 1
    )
    assert "no frame of the test split has a valid depth pixel" in capsys.readouterr().err
    assert read_json(str(out / "meta.json"))["complete"] is False


def test_cityscapes_split_without_valid_depth_is_an_error(tmp_path, capsys):
    raw = R.cityscapes(str(tmp_path / "raw"))
    for f in (tmp_path / "raw" / "disparity" / "val").rglob("*.png"):
        cv2.imwrite(str(f), np.zeros((32, 64), np.uint16))  # p = 0: invalid disparity everywhere
    out = tmp_path / "cityscapes"
    assert prepare_cityscapes.main(["--raw", raw, "--out", str(out), "--workers", "1"]) == 1
    assert "no frame of the val split has a valid depth pixel" in capsys.readouterr().err
    assert read_json(str(out / "meta.json"))["complete"] is False


def test_check_dataset_reports_an_empty_split(tmp_path, scannet_raw, capsys):
    assert prep_scannet(scannet_raw, tmp_path / "data" / "scannet") == 0
    (tmp_path / "data" / "scannet" / "index_val.json").write_text("[]")
    assert check_dataset.main(["scannet_rgbd_val", "--root", str(tmp_path / "data")]) == 1
    assert "PROBLEM scannet_rgbd_val: the dataset has no images (an empty split)" in capsys.readouterr().out


def test_scannet_tree_records_its_label_map_and_refuses_another(tmp_path, scannet_raw, capsys):
    raw, out = tmp_path / "raw", tmp_path / "scannet"
    shutil.copytree(scannet_raw, raw)
    tsv = raw / "scannetv2-labels.combined.tsv"
    assert prep_scannet(raw, out) == 0
    made = read_json(str(out / "meta.json"))["made_by"]
    assert made["tool"] == "datasets.prepare.scannet" and made["version"] == 1
    assert made["inputs"] == {"label_map": {"path": str(tsv), "sha256": hashlib.sha256(tsv.read_bytes()).hexdigest()}}
    assert prep_scannet(raw, out) == 0  # the same inputs: a rerun is fine
    R.write_tsv(str(tsv), [row if row[0] != 2 else (2, "chair", 3, "cabinet") for row in R.TSV_ROWS])
    capsys.readouterr()
    assert prep_scannet(raw, out) == 1
    err = capsys.readouterr().err
    assert f"prepared with the label_map {tsv} (sha256 {made['inputs']['label_map']['sha256'][:12]}), now {tsv}" in err
    assert "its labels would be stale" in err
    assert read_json(str(out / "meta.json"))["complete"] is True  # the finished tree stays usable


def test_nyuv2_tree_refuses_another_class_mapping(tmp_path, capsys):
    from scipy.io import savemat

    src = R.nyuv2_mat(str(tmp_path / "raw"))
    args = [
        "--mat",
        f"{src}/nyu_depth_v2_labeled.mat",
        "--splits",
        f"{src}/splits.mat",
        "--mapping",
        f"{src}/classMapping40.mat",
        "--out",
        str(tmp_path / "nyuv2"),
        "--workers",
        "1",
    ]
    assert prepare_nyuv2.main(args) == 0
    assert (
        read_json(str(tmp_path / "nyuv2" / "meta.json"))["made_by"]["inputs"]["label_map"]["path"]
        == f"{src}/classMapping40.mat"
    )
    savemat(f"{src}/classMapping40.mat", {"mapClass": np.full((1, 894), 40.0)})
    assert prepare_nyuv2.main(args) == 1
    assert "its labels would be stale" in capsys.readouterr().err


def _split_list(raw, split, *scenes):
    (raw / f"scannetv2_{split}.txt").write_text("".join(s + "\n" for s in scenes))


def test_scannet_scene_listed_twice_is_an_error_before_any_work(tmp_path, scannet_raw, capsys):
    raw, out = tmp_path / "raw", tmp_path / "scannet"
    shutil.copytree(scannet_raw, raw)
    _split_list(raw, "train", "scene0000_00", "scene0001_00", "scene0000_00")
    assert prep_scannet(raw, out) == 1
    err = capsys.readouterr().err
    assert f"error: {raw / 'scannetv2_train.txt'}:3: scene0000_00 is listed again (first on line 1)" in err
    assert not out.exists()


def test_scannet_scene_in_train_and_val_is_an_error_before_any_work(tmp_path, scannet_raw, capsys):
    raw, out = tmp_path / "raw", tmp_path / "scannet"
    shutil.copytree(scannet_raw, raw)
    _split_list(raw, "val", "scene0002_00", "scene0001_00")
    assert prep_scannet(raw, out) == 1
    err = capsys.readouterr().err
    assert f"error: {raw / 'scannetv2_val.txt'}: 1 scene(s) also in {raw / 'scannetv2_train.txt'} (scene0001_00)" in err
    assert "evaluation would see training frames" in err
    assert not out.exists()


def _index(out, split):
    return read_json(str(out / f"index_{split}.json"))


def test_check_dataset_reports_repeated_frames_and_frames_shared_with_training(tmp_path, scannet_raw, capsys):
    """Trees made before prepare refused these (or edited by hand) are caught by check_dataset."""
    out = tmp_path / "data" / "scannet"
    assert prep_scannet(scannet_raw, out) == 0
    val, train = _index(out, "val"), _index(out, "train")
    (out / "index_val.json").write_text(json.dumps(val + val[:1] + train[:2]))
    capsys.readouterr()
    assert check_dataset.main(["scannet_rgbd_val", "--root", str(tmp_path / "data")]) == 1
    text = capsys.readouterr().out
    assert f"PROBLEM scannet_rgbd_val: 1 image ids listed more than once (e.g. {val[0]['image_id']})" in text
    assert "PROBLEM scannet_rgbd_val: 2 images are also in scannet_rgbd_train" in text
    assert "evaluation would see training data" in text
    assert check_dataset.main(["scannet_sem_seg_train", "--root", str(tmp_path / "data")]) == 1  # from the other side
    assert "images are also in scannet_sem_seg_val" in capsys.readouterr().out


def test_scannet_zero_focal_length_is_an_error(tmp_path, scannet_raw, capsys):
    raw = tmp_path / "raw"
    shutil.copytree(scannet_raw, raw)
    k = raw / "scans" / "scene0001_00" / "intrinsic" / "intrinsic_color.txt"
    k.write_text("0 0 64 0\n0 0 48 0\n0 0 1 0\n0 0 0 1\n")
    assert prep_scannet(raw, tmp_path / "scannet") == 1
    assert f"error: {k}: focal lengths fx 0 and fy 0 px must be positive" in capsys.readouterr().err


def test_scannet_missing_listed_scene_needs_skip_bad(tmp_path, scannet_raw, capsys):
    raw, out = tmp_path / "raw", tmp_path / "scannet"
    shutil.copytree(scannet_raw, raw)
    _split_list(raw, "train", "scene0000_00", "scene0001_00", "scene0099_00")
    assert prep_scannet(raw, out) == 1
    err = capsys.readouterr().err
    assert f"error: {raw / 'scans'}: 1 scene(s) of the split lists are missing (scene0099_00)" in err
    assert "pass --skip-bad" in err
    assert not out.exists()
    assert prep_scannet(raw, out, "--skip-bad") == 0
    meta = read_json(str(out / "meta.json"))
    assert meta["complete"] is True and meta["splits"]["train"] == ["scene0000_00", "scene0001_00"]


@pytest.mark.parametrize("tool", ["scannet", "nyuv2", "cityscapes"])
def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path, scannet_raw, capsys, monkeypatch, tool):
    from datasets.prepare import tree

    def refuse(path, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system", path)

    monkeypatch.setattr(tree, "write_json", refuse)  # claim's first write of meta.json
    out = tmp_path / tool
    if tool == "scannet":
        rc = prep_scannet(scannet_raw, out)
    elif tool == "nyuv2":
        src = R.nyuv2_mat(str(tmp_path / "raw"))
        rc = prepare_nyuv2.main(
            ["--mat", f"{src}/nyu_depth_v2_labeled.mat", "--splits", f"{src}/splits.mat", "--mapping",
             f"{src}/classMapping40.mat", "--out", str(out), "--workers", "1"]
        )  # fmt: skip
    else:
        rc = prepare_cityscapes.main(
            ["--raw", R.cityscapes(str(tmp_path / "raw")), "--out", str(out), "--workers", "1"]
        )
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"prepare_{tool}: error: {out / 'meta.json'}: Read-only file system; choose a writable --out, or free "
        "space / fix its permissions, then rerun (finished frames are kept)"
    )


def test_ctrl_c_during_preparation_is_one_line(tmp_path, scannet_raw, capsys, monkeypatch):
    from datasets.prepare import scannet

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scannet, "run_parallel", interrupted)
    assert prep_scannet(scannet_raw, tmp_path / "scannet") == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "prepare_scannet: interrupted; finished frames are kept: rerun the same command to convert the rest"
    )
