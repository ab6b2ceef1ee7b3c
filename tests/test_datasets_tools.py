"""`tools.check_dataset` and `tools.visualize_dataset` on a small prepared ScanNet-layout tree."""

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests import raw_fixtures as R
from tools import check_dataset, prepare_scannet, visualize_dataset


@pytest.fixture(autouse=True, scope="module")
def _restore_catalog():
    """These tests re-point the catalog at their own roots; give later modules the default registration."""
    yield
    from datasets.builtin import register_all

    register_all()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tools")
    R.scannet_export(str(root / "raw"), scenes=("scene0000_00",), val_scenes=("scene0001_00",), frames=2)
    assert (
        prepare_scannet.main(
            ["--raw", str(root / "raw"), "--out", str(root / "data" / "scannet"), "--frame-skip", "1", "--workers", "1"]
        )
        == 0
    )
    return root


def test_check_dataset_passes_a_good_tree(root, capsys):
    assert check_dataset.main(["scannet_instance_val", "--root", str(root / "data")]) == 0
    out = capsys.readouterr().out
    assert "2 checked of 2" in out and "instances    8 in 2 images" in out and "problems     0" in out
    assert check_dataset.main(["scannet_sem_seg_train", "--limit", "1", "--root", str(root / "data")]) == 0
    assert "1 checked of 2" in capsys.readouterr().out


def test_check_dataset_reports_every_problem_with_its_file(tmp_path, root, capsys):
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    scene = data / "scannet" / "scenes" / "scene0000_00"
    cv2.imwrite(str(scene / "label" / "0.png"), np.full((48, 64), 30, np.uint8))  # value beyond 20 classes
    cv2.imwrite(str(scene / "depth" / "1.png"), np.full((48, 64), 3, np.uint16))  # metres stored as mm
    (scene / "color" / "1.jpg").write_bytes((scene / "color" / "1.jpg").read_bytes()[:200])
    assert check_dataset.main(["scannet_sem_seg_train", "--root", str(data)]) == 1
    out = capsys.readouterr().out
    assert f"PROBLEM {scene / 'label' / '0.png'}: label values [30] outside 0..19 and 255" in out
    assert f"PROBLEM {scene / 'color' / '1.jpg'}: truncated" in out
    assert "implausible median depth" not in out  # frame 1's image is unreadable, so its depth is not reached
    (scene / "color" / "1.jpg").write_bytes(
        (root / "data" / "scannet" / "scenes" / "scene0000_00" / "color" / "1.jpg").read_bytes()
    )
    assert check_dataset.main(["scannet_rgbd_train", "--root", str(data)]) == 1
    assert f"PROBLEM {scene / 'depth' / '1.png'}: implausible median depth 3 mm" in capsys.readouterr().out


def test_a_command_prints_no_third_party_warning(root):
    """`core` silences what no user can act on once, before Detectron2 loads (fvcore's `torch.jit.script`)."""
    argv = ["scannet_sem_seg_val", "--limit", "1", "--root", str(root / "data")]
    done = subprocess.run(
        [sys.executable, "-m", "tools.check_dataset", *argv],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "problems     0" in done.stdout
    assert "torch.jit.script" not in done.stderr and "Warning" not in done.stderr, done.stderr


def test_check_dataset_on_an_absent_dataset_names_the_command(tmp_path, capsys):
    assert check_dataset.main(["nyuv2_sem_seg_test", "--root", str(tmp_path)]) == 1
    assert "tools.prepare_nyuv2" in capsys.readouterr().err


def test_visualize_dataset_draws_titled_image_depth_colour_bar_and_legend(tmp_path, root, capsys):
    from datasets.drawing import band, text_scale

    out = tmp_path / "vis"
    assert (
        visualize_dataset.main(["scannet_instance_val", "--out", str(out), "-n", "8", "--root", str(root / "data")])
        == 0
    )
    files = sorted(p.name for p in out.iterdir())
    assert files == ["000_scene0001_00_0.png", "001_scene0001_00_1.png"]
    assert "2 images of scannet_instance_val" in capsys.readouterr().out
    panel = cv2.imread(str(out / files[0]))[..., ::-1]
    # 48x64 frames are drawn 5x (240 px); image and depth columns 320 px wide, a 4 px gap between them; titles
    # grow with the frames
    top = band(text_scale(320))
    assert top > 30 and panel.shape[0] == top + 240
    for x0 in (0, 324):  # a title over the image and over the depth
        assert (panel[:top, x0 : x0 + 80] < 128).any(axis=2).sum() > 30, x0
    depth = panel[top:, 324:644]
    assert (depth[:25, :35] == 0).all()  # the invalid corner (first 5 rows x 7 columns) stays black
    assert depth[200].std() > 10  # the depth ramp is colour-mapped
    # right of the depth: the colour bar, then the legend with every class of the frame, names uncut
    legend_x = 644 + 4 + 60
    assert panel.shape[1] > legend_x + 40 and (panel[:, -2:] == 255).all()
    assert (panel[top : top + 60, legend_x:] < 128).any(axis=2).sum() > 100


def test_instances_are_painted_in_the_legends_colours_and_named_inside_the_image():
    """A grey frame with one instance touching the right edge: its pixels are half its class colour, exactly
    the legend's swatch, and its long name sits whole inside the image on a black box."""
    from pycocotools import mask as mask_util

    from datasets import visualize
    from datasets.drawing import SCALE

    meta = {"thing_classes": ["chair", "otherfurniture"], "thing_colors": [(200, 0, 0), (0, 0, 200)]}
    region = np.zeros((60, 80), np.uint8)
    region[10:50, 60:80] = 1
    rle = mask_util.encode(np.asfortranarray(region))
    d = {"height": 60, "width": 80, "annotations": [{"category_id": 1, "segmentation": rle, "bbox": [60, 10, 80, 50]}]}
    assert visualize.classes_present(d, meta) == [("otherfurniture", (0, 0, 200))]
    img = np.full((60, 80, 3), 100, np.uint8)
    out = visualize.annotated(d, meta, img, 1.0, SCALE)
    assert (out[45, 62] == (50, 50, 150)).all()  # half grey, half the legend's colour
    assert (out[10, 70] == 255).all() and (out[30, 40] == 100).all()  # a white outline; outside untouched
    black = np.nonzero((out == 0).all(axis=2))
    text_w = cv2.getTextSize("otherfurniture", cv2.FONT_HERSHEY_SIMPLEX, visualize.LABEL_SCALE * SCALE, 1)[0][0]
    assert black[1].max() == 79 and black[1].max() - black[1].min() + 1 == text_w + 6  # the whole box, in the image
