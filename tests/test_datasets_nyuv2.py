"""NYUv2 preparation from a v7.3 .mat written with MATLAB's axis order, and its registration.

Fixture (tests/raw_fixtures.py, 24x32 images): wall (raw 21 -> NYU40 1) rows 0-11, ceiling (raw 4 -> 22)
rows 0-2 cols 0-7, floor (raw 11 -> 2) rows 18-23, two chairs (raw 5 -> 5, instances 1 and 2) rows 12-17 cols
0-7 and 8-15, table (raw 19 -> 7) rows 12-17 cols 16-31; pixel (0, 0) unlabeled. Train = 1, 3; test = 2, 4."""

import h5py
import numpy as np
import pytest
from pycocotools import mask as mask_util
from scipy.io import savemat

from datasets.fileio import read_json
from tests import raw_fixtures as R
from tools import prepare_nyuv2


@pytest.fixture(autouse=True, scope="module")
def _restore_catalog():
    """These tests re-point the catalog at their own roots; give later modules the default registration."""
    yield
    from datasets.builtin import register_all

    register_all()


def prep(src, out):
    return prepare_nyuv2.main(
        [
            "--mat",
            str(src / "nyu_depth_v2_labeled.mat"),
            "--splits",
            str(src / "splits.mat"),
            "--mapping",
            str(src / "classMapping40.mat"),
            "--out",
            str(out),
            "--workers",
            "1",
        ]
    )


def read(path):
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("nyu")
    R.nyuv2_mat(str(root / "raw"))
    assert prep(root / "raw", root / "data" / "nyuv2") == 0
    return root


def test_fixture_uses_matlab_axis_order(tree):
    with h5py.File(tree / "raw" / "nyu_depth_v2_labeled.mat", "r") as f:
        assert f["images"].shape == (4, 3, 32, 24) and f["labels"].shape == (4, 32, 24)
    assert (tree / "raw" / "nyu_depth_v2_labeled.mat").read_bytes()[:10] == b"MATLAB 7.3"


def test_rgb_and_depth_come_out_upright_and_in_millimetres(tree):
    rgb = read(tree / "data" / "nyuv2" / "image" / "0003.png")[..., ::-1]
    np.testing.assert_array_equal(rgb, R.color_image((24, 32), 2))  # lossless, not transposed
    depth = read(tree / "data" / "nyuv2" / "depth" / "0003.png")
    assert depth.dtype == np.uint16 and depth.shape == (24, 32)
    assert depth[5, 7] == 1557 and depth[0, 0] == 1500  # 1 + 0.25 * 2 + 0.001 * x + 0.01 * y metres


def test_labels_map_894_classes_to_40_and_13(tree):
    l40 = read(tree / "data" / "nyuv2" / "label40" / "0001.png")
    l13 = read(tree / "data" / "nyuv2" / "label13" / "0001.png")
    assert l40.dtype == np.uint8 and l40.shape == (24, 32)
    for (y, x), c40, c13 in [
        ((0, 0), 255, 255),
        ((5, 20), 0, 11),
        ((1, 3), 21, 2),
        ((20, 5), 1, 4),
        ((14, 3), 4, 3),
        ((14, 12), 4, 3),
        ((14, 20), 6, 9),
    ]:
        assert (l40[y, x], l13[y, x]) == (c40, c13), (y, x)


def test_instances_are_class_instance_pairs_of_thing_classes(tree):
    recs = read_json(str(tree / "data" / "nyuv2" / "index_train.json"))
    assert [r["image_id"] for r in recs] == ["nyuv2_0001", "nyuv2_0003"]
    anns = read_json(str(tree / "data" / "nyuv2" / "instances_train.json"))["nyuv2_0001"]
    # two chairs (same raw class, instance numbers 1 and 2) and a table; wall, floor, ceiling are stuff
    assert [a["category_id"] for a in anns] == [2, 2, 4]
    masks = [mask_util.decode(a["segmentation"]) for a in anns]
    assert [int(m.sum()) for m in masks] == [48, 48, 96] and not (masks[0] & masks[1]).any()
    k = np.array(recs[0]["intrinsics"])
    np.testing.assert_allclose([k[0, 0], k[1, 2]], [518.8579 * 32 / 640, 253.7362 * 24 / 480])


def test_registered_splits_and_metadata(tree):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from datasets.builtin import register_all

    names = register_all(str(tree / "data"))
    assert {
        "nyuv2_rgbd_train",
        "nyuv2_sem_seg_train",
        "nyuv2_sem_seg_test",
        "nyuv2_sem_seg13_train",
        "nyuv2_sem_seg13_test",
        "nyuv2_instance_train",
        "nyuv2_instance_test",
    } <= set(names)
    test = DatasetCatalog.get("nyuv2_sem_seg_test")
    assert [d["image_id"] for d in test] == ["nyuv2_0002", "nyuv2_0004"]
    assert test[0]["sem_seg_file_name"].endswith("label40/0002.png")
    assert DatasetCatalog.get("nyuv2_sem_seg13_train")[0]["sem_seg_file_name"].endswith("label13/0001.png")
    assert len(MetadataCatalog.get("nyuv2_sem_seg_train").stuff_classes) == 40
    assert MetadataCatalog.get("nyuv2_sem_seg13_train").stuff_classes[11] == "wall"
    imeta = MetadataCatalog.get("nyuv2_instance_test")
    assert imeta.evaluator_type == "coco" and imeta.thing_classes[2] == "chair" and len(imeta.thing_classes) == 37


def test_bad_files_are_named(tmp_path, tree, capsys):
    src = tmp_path / "raw"
    R.nyuv2_mat(str(src))
    savemat(str(src / "nyu_depth_v2_labeled.mat"), {"images": np.zeros((2, 2))})  # a v5 file
    assert prep(src, tmp_path / "out") == 1
    assert "nyu_depth_v2_labeled.mat: not a MATLAB v7.3" in capsys.readouterr().err

    R.nyuv2_mat(str(src))
    with h5py.File(src / "nyu_depth_v2_labeled.mat", "r+") as f:  # depths stored H x W (not reversed)
        data = f["depths"][()]
        del f["depths"]
        f.create_dataset("depths", data=data.transpose(0, 2, 1))
    assert prep(src, tmp_path / "out") == 1
    assert "'depths' has shape (4, 24, 32), expected (4, 32, 24)" in capsys.readouterr().err

    R.nyuv2_mat(str(src), test=(2, 5))
    assert prep(src, tmp_path / "out") == 1
    assert "splits.mat: test indices must be 1-based within 1..4" in capsys.readouterr().err

    R.nyuv2_mat(str(src))
    with h5py.File(src / "nyu_depth_v2_labeled.mat", "r+") as f:
        f["labels"][1, 3, 3] = 900  # beyond the 894 classes of classMapping40.mat
    assert prep(src, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "image 2 has label id 900" in err and "classMapping40.mat" in err
    assert read_json(str(tmp_path / "out" / "meta.json"))["complete"] is False
