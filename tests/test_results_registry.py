"""results/paper.csv and results/baselines.yaml: the shipped files hold what the issue asks, honestly
flagged, and bad rows or entries fail with their file and line."""

import re

import pytest

from results import baselines as registry
from results.baselines import BaselineError, check_references, init_spec, load_baselines
from results.paper import COLUMNS, PaperError, load_paper


def _value(rows, method, dataset, metric, backbone="r50", fraction=100, pretrain=None):
    found = [
        r
        for r in rows
        if (r.method, r.dataset, r.metric, r.backbone, r.data_fraction) == (method, dataset, metric, backbone, fraction)
        and not r.relative_to
        and (pretrain is None or r.pretrain_data == pretrain)
    ]
    assert len(found) == 1, (method, dataset, metric, found)
    return found[0]


def test_paper_csv_holds_the_pri3d_readme_numbers_verified():
    rows = load_paper()
    vg, moco = "Pri3D (View + Geo)", "MoCoV2-supIN->SN"
    expected = [
        (vg, "scannet", "sem_seg/mIoU", "r50", 100, None, 61.7),
        ("Pri3D (View)", "scannet", "sem_seg/mIoU", "r50", 100, None, 61.3),
        ("Pri3D (Geo)", "scannet", "sem_seg/mIoU", "r50", 100, None, 61.1),
        (vg, "scannet", "sem_seg/mIoU", "r18", 100, None, 55.7),
        (vg, "scannet", "sem_seg/mIoU", "r50", 80, None, 60.3),
        (vg, "scannet", "sem_seg/mIoU", "r50", 60, None, 58.9),
        (vg, "scannet", "sem_seg/mIoU", "r50", 40, None, 56.2),
        (vg, "scannet", "sem_seg/mIoU", "r50", 20, None, 51.5),
        (vg, "nyuv2", "sem_seg/mIoU", "r50", 100, None, 54.7),
        (moco, "nyuv2", "sem_seg/mIoU", "r50", 100, None, 47.6),
        (vg, "scannet", "bbox/AP50", "r50", 100, None, 44.5),
        (vg, "scannet", "segm/AP50", "r50", 100, None, 35.8),
        (moco, "scannet", "bbox/AP50", "r50", 100, None, 43.5),
        (moco, "scannet", "segm/AP50", "r50", 100, None, 33.9),
        (vg, "nyuv2", "bbox/AP50", "r50", 100, None, 34.0),
        (vg, "nyuv2", "segm/AP50", "r50", 100, None, 29.5),
        (moco, "nyuv2", "bbox/AP50", "r50", 100, None, 31.1),
        (moco, "nyuv2", "segm/AP50", "r50", 100, None, 27.2),
        ("Pri3D (View)", "cityscapes", "sem_seg/mIoU", "r50", 100, "KITTI", 56.3),
        ("Pri3D (View)", "cityscapes", "sem_seg/mIoU", "r50", 100, "MegaDepth", 55.2),
    ]
    for method, dataset, metric, backbone, fraction, pretrain, value in expected:
        row = _value(rows, method, dataset, metric, backbone, fraction, pretrain)
        assert row.value == value and row.verified and "Sekunde/Pri3D" in row.source


def test_paper_csv_mask3d_numbers_are_flagged_unverified():
    rows = load_paper()
    mask3d = {(r.dataset, r.metric): r for r in rows if r.method == "Mask3D" and not r.relative_to}
    assert {k: r.value for k, r in mask3d.items()} == {
        ("scannet", "sem_seg/mIoU"): 66.7,
        ("nyuv2", "sem_seg/mIoU"): 56.9,
        ("cityscapes", "sem_seg/mIoU"): 66.4,
        ("scannet", "segm/AP50"): 41.2,
        ("nyuv2", "bbox/AP"): 25.9,
    }
    assert not any(r.verified for r in mask3d.values())
    headline = [r for r in rows if r.relative_to]
    assert [(r.method, r.relative_to, r.value, r.verified) for r in headline] == [("Mask3D", "Pri3D", 6.5, True)]
    placeholders = [r for r in rows if r.method in ("MAE", "ImageNet supervised")]
    assert placeholders and all(r.value is None and r.text == "" and not r.verified for r in placeholders)


def test_bad_paper_row_names_file_and_line(tmp_path):
    good = "Pri3D,Pri3D (View),r50,ScanNet,scannet,val,semseg,sem_seg/mIoU,100,61.3,,README,yes,"
    cases = [
        (good.replace("scannet,val", "scanet,val"), "dataset 'scanet'"),
        (good.replace("61.3", "about 61"), "not a number"),
        (good.replace("61.3,,README,yes", ",,README,yes"), "verified=yes needs a value"),
        (good.replace("sem_seg/mIoU", "mIoU"), "not a Detectron2 name"),
        (good.replace(",100,", ",0,"), "data_fraction"),
    ]
    for bad, message in cases:
        path = tmp_path / "paper.csv"
        path.write_text(",".join(COLUMNS) + "\n" + good + "\n" + bad + "\n")
        with pytest.raises(PaperError, match=rf"{re.escape(str(path))}:3: .*{message}"):
            load_paper(path)


def test_registry_ships_the_baselines_and_resolves_names(capsys):
    baselines = load_baselines()
    assert {"random", "mask3d", "imagenet_mae_vitb", "imagenet_supervised_vitb", "pri3d_r50"} <= set(baselines)
    check_references(baselines, {r.method for r in load_paper()})
    assert init_spec("imagenet_mae_vitb") == "mae:checkpoints/mae_pretrain_vit_base.pth"
    assert init_spec("random") == "random"
    assert (baselines["pri3d_r50"].backbone, baselines["pri3d_r50"].init.split(":")[0]) == ("r50", "pri3d")
    assert registry.main(["random"]) == 0 and capsys.readouterr().out == "random\n"
    assert registry.main(["no_such"]) == 1 and "no baseline 'no_such'" in capsys.readouterr().err


def test_a_baseline_whose_checkpoint_is_missing_says_where_to_get_it(tmp_path, capsys):
    path, ckpt = tmp_path / "baselines.yaml", tmp_path / "ckpt" / "vit.pth"
    path.write_text(f"- name: x\n  init: mae:{ckpt}\n  backbone: vit_b\n  note: from https://example.org/vit.pth\n")
    assert registry.main(["x", "--registry", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"baseline 'x' ({path}:1) needs {ckpt}, which does not exist" in captured.err
    assert "(from https://example.org/vit.pth)" in captured.err
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"weights")
    assert registry.main(["x", "--registry", str(path)]) == 0 and capsys.readouterr().out == f"mae:{ckpt}\n"


def test_bad_registry_entry_names_file_and_line(tmp_path):
    path = tmp_path / "baselines.yaml"
    entry = "- name: a\n  init: random\n  backbone: vit_b\n"
    cases = [
        (entry + entry, ":4: baseline 'a' is already defined"),
        (entry + "- name: b\n  init: mae\n  backbone: vit_b\n  refs: [MAE]\n", ":4: unknown keys"),
        (entry + "- name: B-1\n  init: random\n  backbone: vit_b\n", ":4: name 'B-1'"),
        (entry + "- name: c\n  backbone: vit_b\n", ":4: missing \\['init'\\]"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(BaselineError, match=rf"{re.escape(str(path))}{message}"):
            load_baselines(path)
    path.write_text(entry.replace("vit_b\n", "vit_b\n  references: [Pri3D (Veiw + Geo)]\n"))
    with pytest.raises(BaselineError, match=rf"{re.escape(str(path))}:1: reference 'Pri3D \(Veiw \+ Geo\)'"):
        check_references(load_baselines(path), {r.method for r in load_paper()})
