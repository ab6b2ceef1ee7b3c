"""`make bench-*`'s driver: default init, data fallback and messages, and the report beside paper rows."""

import csv
import json
import os

import torch

from benchmark import suite
from results.paper import COLUMNS
from results.store import read_records


def test_bench_scannet_falls_back_to_synthetic_and_prints_paper_rows(synthetic_root, tmp_path, capsys):
    """One task keeps this test short; the train_net tests cover finished and resumed runs."""
    argv = ["scannet", "--init", "random", "--iters", "2", "--tasks", "semseg", "--output", str(tmp_path)]
    assert suite.main(argv) == 0
    out = capsys.readouterr().out
    assert "ScanNet is not prepared" in out and "make data-synthetic" in out
    ref = suite.paper_rows("scannet", "semseg")[0]  # results/paper.csv's ScanNet references
    assert f"{ref['method']} {ref['backbone']} {ref['value']}" in out
    assert "bench-scannet: semseg on synthetic with init random" in out
    assert "semseg: vit_e96d4 backbone" in out and "semseg (vit_e96d4) sem_seg/mIoU " in out
    assert out.splitlines()[-1].endswith(" %")
    records = read_records()
    assert [(r["task"], r["dataset"], r["backbone"], r["init"], r["iterations"]) for r in records] == [
        ("semseg", "synthetic", "vit_e96d4", "random", 2)
    ]
    # the run trained its 2 iterations (the second step moved the weights) and its record is what was printed
    run = tmp_path / "synthetic/semseg_vit_e96d4_tiny/random/seed0"
    first, final = (torch.load(run / name, weights_only=False) for name in ("model_0000000.pth", "model_final.pth"))
    assert (first["iteration"], final["iteration"]) == (0, 1)
    assert any(not torch.equal(first["model"][k], v) for k, v in final["model"].items())
    assert json.loads((run / "metrics.json").read_text())["record"] == records[0]
    assert f"sem_seg/mIoU {records[0]['metrics']['sem_seg/mIoU']:.2f} %" in out.splitlines()[-1]


def test_default_init_is_the_newest_export_or_a_message(tmp_path, monkeypatch, capsys):
    for age, name in enumerate(("new", "old")):
        (tmp_path / "output/pretrain" / name).mkdir(parents=True)
        (tmp_path / "output/pretrain" / name / "backbone.pth").write_bytes(b"x")
        os.utime(tmp_path / "output/pretrain" / name / "backbone.pth", (1e9 - age, 1e9 - age))
    assert suite.newest_export(tmp_path).parent.name == "new"
    monkeypatch.setattr(suite, "PRETRAIN_EXPORTS", "no-such-dir/*/backbone.pth")
    assert suite.main(["scannet"]) == 1
    err = capsys.readouterr().err
    assert "run `make pretrain`" in err and "INIT=random" in err


def test_absent_dataset_names_its_preparation_command(synthetic_root, capsys):
    assert suite.main(["nyuv2", "--init", "random"]) == 1
    assert "python -m tools.prepare_nyuv2" in capsys.readouterr().err
    assert suite.main(["cityscapes", "--init", "mae:/no/such.pth"]) == 1
    assert "/no/such.pth" in capsys.readouterr().err


def test_report_puts_paper_rows_beside_our_metrics(tmp_path):
    paper = tmp_path / "paper.csv"
    fields = list(COLUMNS)
    rows = [
        dict(
            method="Pri3D",
            backbone="r50",
            dataset="nyuv2",
            task="insseg",
            metric="segm/AP50",
            data_fraction="100",
            value="29.5",
            verified="yes",
        ),
        dict(
            method="Mask3D",
            backbone="vit_b",
            dataset="nyuv2",
            task="det",
            metric="bbox/AP",
            data_fraction="100",
            value="25.9",
            verified="no",
        ),
        dict(
            method="Pri3D",
            backbone="r50",
            dataset="nyuv2",
            task="insseg",
            metric="segm/AP50",
            data_fraction="20",
            value="11.0",
            verified="yes",
        ),
        dict(
            method="X",
            backbone="r50",
            dataset="scannet",
            task="insseg",
            metric="segm/AP50",
            data_fraction="100",
            value="1.0",
            verified="yes",
        ),
    ]
    with open(paper, "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in fields} for r in rows)
    record = {"task": "insseg", "tiny": True, "metrics": {"bbox/AP": 3.0, "segm/AP50": 7.25, "segm/AP": 2.0}}
    lines = suite.report("nyuv2", "nyuv2", [record], paper).splitlines()
    assert any(
        line.split()[:4] == ["insseg", "segm/AP50", "7.25", "%"] and line.endswith("Pri3D r50 29.5") for line in lines
    )
    assert any(
        line.split()[:4] == ["insseg", "bbox/AP", "3.00", "%"] and line.endswith("Mask3D vit_b 25.9†") for line in lines
    )
    assert "bbox/AP50" not in "\n".join(lines) and "tiny models" in lines[-1]


def test_a_user_error_of_a_run_is_one_line(synthetic_root, tmp_path, capsys):
    """The run's folder is read-only: the suite reports train_net's one line, not its output's tail."""
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "synthetic").write_text("a file where the runs' folder should be")
    assert suite.main(["scannet", "--init", "random", "--iters", "2", "--tasks", "semseg", "--output", str(ro)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: the semseg run stopped: cannot write in the output folder")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.out
