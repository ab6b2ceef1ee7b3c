"""`python -m results.report`: exact table cells from fixture runs, empty cells kept empty, plots written,
a malformed record stopping the report with its file and line, and the committed report rebuilt byte for
byte from committed files only."""

import json
import os
import re

import pytest

from results import report
from results.store import append_record

COMMITTED_REPORT = report.RESULTS_DIR / "REPORT.md"

PNG = b"\x89PNG\r\n\x1a\n"


def _run(
    kind="finetune",
    dataset="scannet",
    split="val",
    task="semseg",
    init="pri3d_r50",
    backbone="r50",
    seed=0,
    metrics=None,
    **extra,
):
    record = {
        "kind": kind,
        "dataset": dataset,
        "split": split,
        "task": task,
        "backbone": backbone,
        "init": init,
        "seed": seed,
        "metrics": metrics or {},
        "date": "2025-01-01T00:00:00Z",
    }
    record.update(extra)
    append_record(record)


def _table(md: str, title: str) -> list[dict]:
    """The markdown table under heading `title`, as one dict per row (header -> cell)."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip("#").strip() == title)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip()[1:-1].split("|")])
    header, body = rows[0], rows[2:]
    return [dict(zip(header, r, strict=False)) for r in body]


def _row(rows: list[dict], **match) -> dict:
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


def _no_campaigns(tmp_path) -> str:
    """An empty campaign folder, so a test reads only the records it wrote."""
    folder = tmp_path / "campaigns"
    folder.mkdir(exist_ok=True)
    return str(folder)


@pytest.fixture
def fixture_runs():
    _run(seed=0, metrics={"sem_seg/mIoU": 60.0})
    _run(seed=1, metrics={"sem_seg/mIoU": 61.0})
    _run(seed=0, metrics={"sem_seg/mIoU": 50.0}, data_fraction=20)
    _run(init="mask3d", backbone="vit_b", metrics={"sem_seg/mIoU": 66.0})
    _run(task="insseg", init="mask3d", backbone="vit_b", metrics={"bbox/AP50": 40.0, "segm/AP50": 38.0})
    for seed, (miou, pacc) in enumerate(((30.0, 70.0), (32.0, 71.0))):
        _run(
            dataset="synthetic",
            init="mask3d",
            backbone="vit_t",
            seed=seed,
            metrics={"sem_seg/mIoU": miou, "sem_seg/pACC": pacc, "sem_seg/IoU-wall": 5.0},
        )
    _run(
        dataset="nyuv2", split="test", init="random", backbone="vit_b", data_fraction=50, metrics={"sem_seg/mIoU": 30.0}
    )
    _run(
        kind="pretrain",
        dataset="nyuv2+scannet",
        task="pretrain",
        init="random",
        backbone="vit_t",
        objective="mask3d",
        metrics={"loss": 0.25},
        iterations=20,
        loss_history=[[0, 1.0], [10, 0.5], [20, 0.25]],
    )


def test_report_cells_deltas_empty_cells_and_plots(fixture_runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert report.main(["--campaigns", _no_campaigns(tmp_path), "--scratch", "--out", str(out)]) == 0
    md = (out / "REPORT.md").read_text(encoding="utf-8")
    assert capsys.readouterr().out == f"tables: {out / 'REPORT.md'} ({len(md.splitlines())} lines): new; plots: " + (
        "data_efficient.png new, pretrain_loss.png new\n"
    )

    scannet = _table(md, "ScanNet semantic segmentation (val)")
    pri3d = _row(scannet, Reference="Pri3D (View + Geo)", Backbone="r50")
    assert (pri3d["Ours"], pri3d["mIoU paper"], pri3d["mIoU ours"], pri3d["Δ mIoU"], pri3d["Runs"]) == (
        "`pri3d_r50`",
        "61.7",
        "60.50 ± 0.71",
        "-1.20",
        "2",
    )
    mask3d = _row(scannet, Reference="Mask3D")
    assert (mask3d["mIoU paper"], mask3d["mIoU ours"], mask3d["Δ mIoU"], mask3d["Runs"]) == (
        "66.7†",
        "66.00",
        "-0.70",
        "1",
    )
    mae = _row(scannet, Reference="MAE")  # unknown paper value, no run yet: nothing invented
    assert (mae["Ours"], mae["mIoU paper"], mae["mIoU ours"], mae["Δ mIoU"], mae["Runs"]) == (
        "`imagenet_mae_vitb`",
        "",
        "",
        "",
        "0",
    )
    view = _row(scannet, Reference="Pri3D (View)")  # a reference no baseline claims
    assert (view["mIoU paper"], view["Ours"], view["mIoU ours"], view["Runs"]) == ("61.3", "", "", "")
    assert _row(scannet, Ours="`random`")["Runs"] == "0"

    insseg = _table(md, "ScanNet instance segmentation and detection (val)")
    m3d = _row(insseg, Reference="Mask3D")
    assert (m3d["box AP50 paper"], m3d["box AP50 ours"], m3d["Δ box AP50"]) == ("", "40.00", "")
    assert (m3d["mask AP50 paper"], m3d["mask AP50 ours"], m3d["Δ mask AP50"]) == ("41.2†", "38.00", "-3.20")

    efficient = _table(md, "Data-efficient ScanNet semantic segmentation (val, mIoU by % of training scenes)")
    assert [efficient[0][f] for f in ("20%", "40%", "60%", "80%", "100%")] == ["51.5", "56.2", "58.9", "60.3", "61.7"]
    ours = _row(efficient, Row="`pri3d_r50` (ours)")
    assert (ours["20%"], ours["40%"], ours["100%"]) == ("50.00 (n=1)", "", "60.50 ± 0.71 (n=2)")
    delta = _row(efficient, Row="Δ `pri3d_r50` − Pri3D (View + Geo)")
    assert (delta["20%"], delta["60%"], delta["100%"]) == ("-1.50", "", "-1.20")
    assert "the paper's curve only" not in md  # our runs are on the plot

    pretrain = _table(md, "Pre-training runs")
    assert [(r["Objective"], r["Dataset"], r["Final loss (mean, last 10 %)"]) for r in pretrain] == [
        ("mask3d", "nyuv2+scannet", "0.2500")
    ]

    synthetic = _table(md, "synthetic semseg")
    assert synthetic == [
        {
            "split": "val",
            "init": "mask3d",
            "backbone": "vit_t",
            "data fraction": "100",
            "sem_seg/mIoU": "31.00 ± 1.41",
            "sem_seg/pACC": "70.50 ± 0.71",
            "Runs": "2",
        }
    ]
    other = _table(md, "other fine-tuning runs")  # placed nowhere else, still shown
    assert _row(other, dataset="nyuv2", init="random")["sem_seg/mIoU"] == "30.00"
    assert "+6.5" in md and "− `pri3d_r50` (r50) = +5.50" in md

    assert sorted(os.listdir(out)) == ["REPORT.md", "data_efficient.png", "pretrain_loss.png"]
    for name in ("data_efficient.png", "pretrain_loss.png"):
        assert (out / name).read_bytes().startswith(PNG)
        assert f"]({name})" in md


def test_no_records_still_shows_the_paper_tables_and_drops_stale_plots(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "repro_mini_curves.png").write_bytes(PNG)  # left by an earlier report whose records are gone
    assert report.main(["--campaigns", _no_campaigns(tmp_path), "--out", str(out)]) == 0
    md = (out / "REPORT.md").read_text(encoding="utf-8")
    nyu = _table(md, "NYUv2 semantic segmentation (test)")
    assert _row(nyu, Reference="MoCoV2-supIN->SN")["mIoU paper"] == "47.6"
    assert "No pre-training run yet" in md and "No synthetic run yet" in md
    assert "no campaign records are committed" in md
    assert "The plot holds the paper's curve only: no run of ours yet" in md
    assert sorted(os.listdir(out)) == ["REPORT.md", "data_efficient.png"]


def test_tiny_and_synthetic_runs_never_enter_the_paper_tables(tmp_path):
    miou = {"sem_seg/mIoU": 60.0}
    _run(init="pri3d_r50", metrics=miou, tiny=True)  # the CPU-sized recipe on real ScanNet
    _run(init="pri3d_r50", metrics=miou, tiny=True, data_fraction=20)
    _run(dataset="synthetic", init="pri3d_r50", metrics=miou)
    out = tmp_path / "out"
    assert report.main(["--campaigns", _no_campaigns(tmp_path), "--scratch", "--out", str(out)]) == 0
    md = (out / "REPORT.md").read_text(encoding="utf-8")
    pri3d = _row(_table(md, "ScanNet semantic segmentation (val)"), Reference="Pri3D (View + Geo)", Backbone="r50")
    assert (pri3d["mIoU ours"], pri3d["Δ mIoU"], pri3d["Runs"]) == ("", "", "0")
    efficient = _table(md, "Data-efficient ScanNet semantic segmentation (val, mIoU by % of training scenes)")
    assert not any(r["Row"].startswith("Δ") for r in efficient)
    assert "ours: no run yet" in md  # the headline claims have no run either
    other = _table(md, "other fine-tuning runs")
    assert [(r["dataset"], r["data fraction"], r["tiny"], r["Runs"]) for r in other] == [
        ("scannet", "100", "True", "1"),
        ("scannet", "20", "True", "1"),
    ]


def test_committed_report_is_rebuilt_byte_for_byte_from_committed_files(tmp_path, capsys):
    append_record(
        {
            "kind": "finetune",
            "dataset": "scannet",
            "split": "val",
            "task": "semseg",
            "backbone": "r50",
            "init": "pri3d_r50",
            "seed": 0,
            "metrics": {"sem_seg/mIoU": 1.0},
            "date": "d",
        }
    )  # scratch
    out = tmp_path / "out"
    assert report.main(["--out", str(out)]) == 0
    assert (out / "REPORT.md").read_bytes() == COMMITTED_REPORT.read_bytes(), (
        "results/REPORT.md is stale: run `make tables` and commit it"
    )
    text = COMMITTED_REPORT.read_text(encoding="utf-8")
    assert not re.search(r"(/work|/home|/tmp|/root|/Users|[A-Z]:\\)", text)
    for name in re.findall(r"\]\(([^)]+\.png)\)", text):
        assert (COMMITTED_REPORT.parent / name).read_bytes().startswith(PNG)


def test_campaign_records_are_read_by_default_and_the_scratch_store_only_when_asked(tmp_path):
    campaigns = _no_campaigns(tmp_path)
    record = {
        "kind": "finetune",
        "dataset": "nyuv2",
        "split": "test",
        "task": "semseg",
        "backbone": "vit_t",
        "init": "random",
        "seed": 0,
        "metrics": {"sem_seg/mIoU": 12.0},
        "date": "d",
        "tiny": True,
    }
    append_record(record, os.path.join(campaigns, "study.jsonl"))
    _run(**{**record, "metrics": {"sem_seg/mIoU": 14.0}})
    out = tmp_path / "out"
    for extra, cell, runs in (([], "12.00", "1"), (["--scratch"], "13.00 ± 1.41", "2")):
        assert report.main(["--campaigns", campaigns, *extra, "--out", str(out)]) == 0
        md = (out / "REPORT.md").read_text(encoding="utf-8")
        row = _row(_table(md, "other fine-tuning runs"), dataset="nyuv2")
        assert (row["sem_seg/mIoU"], row["Runs"]) == (cell, runs)
        assert "study.jsonl" in md and ("runs.jsonl" in md) == bool(extra)


def test_the_console_says_where_the_report_is_and_what_changed(tmp_path, capsys):
    _run(metrics={"sem_seg/mIoU": 60.0})
    argv = ["--campaigns", _no_campaigns(tmp_path), "--scratch", "--out", str(tmp_path / "out")]
    assert report.main(argv) == 0
    capsys.readouterr()
    assert report.main(argv) == 0
    assert capsys.readouterr().out.endswith(" lines): unchanged\n")
    _run(metrics={"sem_seg/mIoU": 62.0})
    assert report.main(argv) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"tables: {tmp_path / 'out' / 'REPORT.md'} (") and "| " not in said  # no table printed
    assert "changed 'introduction', 'ScanNet semantic segmentation (val)'" in said and len(said.splitlines()) == 1
    assert said.endswith("; plots: data_efficient.png redrawn\n")


def test_a_report_with_scratch_runs_never_replaces_the_committed_one(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "SCRATCH_REPORT_DIR", tmp_path / "scratch_report")
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path / "committed")
    _run(metrics={"sem_seg/mIoU": 60.0})
    assert report.main(["--campaigns", _no_campaigns(tmp_path), "--scratch"]) == 0
    assert (tmp_path / "scratch_report" / "REPORT.md").is_file() and not (tmp_path / "committed").exists()


def test_a_named_store_that_does_not_exist_is_an_error(tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        report.main(
            ["--campaigns", _no_campaigns(tmp_path), "--store", str(tmp_path / "absent.jsonl"), "--out", str(out)]
        )
        == 1
    )
    assert "no run store at" in capsys.readouterr().err and not out.exists()
    assert report.main(["--campaigns", _no_campaigns(tmp_path), "--scratch", "--out", str(out)]) == 1  # none yet
    assert report.main(["--campaigns", str(tmp_path / "absent"), "--out", str(out)]) == 1


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"kind": "finetune", "dataset": "scannet"\n', "not valid JSON"),
        (
            json.dumps(
                {
                    "kind": "finetune",
                    "dataset": "scanet",
                    "split": "val",
                    "task": "semseg",
                    "backbone": "r50",
                    "init": "random",
                    "seed": 0,
                    "metrics": {},
                    "date": "d",
                }
            )
            + "\n",
            "dataset 'scanet'",
        ),
        (
            json.dumps(
                {
                    "kind": "finetune",
                    "dataset": "scannet",
                    "task": "semseg",
                    "backbone": "r50",
                    "init": "random",
                    "seed": 0,
                    "metrics": {},
                    "date": "d",
                }
            )
            + "\n",
            "split None",
        ),
    ],
)
def test_malformed_record_is_reported_with_file_and_line(tmp_path, capsys, bad_line, message):
    store = os.environ["MASK3D_RESULTS"]
    _run(metrics={"sem_seg/mIoU": 60.0})
    with open(store, "a", encoding="utf-8") as f:
        f.write(bad_line)
    out = tmp_path / "out"
    assert report.main(["--campaigns", _no_campaigns(tmp_path), "--store", store, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{store}:2:" in err and message in err
    assert not out.exists()


def test_depth_runs_fill_the_depth_tables_and_synthetic_ones_the_smoke_section(tmp_path):
    """Depth metrics keep 3 decimals everywhere (core.units), as the run's own summary line prints them."""
    depth = {"depth/delta1": 0.8, "depth/AbsRel": 0.274, "depth/RMSE": 0.5, "depth/RMSE_log": 0.2}
    _run(dataset="nyuv2", split="test", task="depth", init="mask3d", backbone="vit_b", metrics=depth)
    _run(dataset="synthetic", task="depth", init="random", backbone="vit_b", metrics=depth, tiny=True)
    _run(dataset="synthetic", task="depth", init="random", backbone="vit_b", metrics=depth, tiny=True, seed=1)
    md = report.build([report.store_path()], tmp_path)
    row = _row(_table(md, "NYUv2 monocular depth estimation (test, Eigen crop)"), Ours="`mask3d`")
    cells = (row["δ<1.25 ours"], row["AbsRel ours"], row["RMSE m ours"], row["Runs"])
    assert cells == ("0.800", "0.274", "0.500", "1")
    assert _row(_table(md, "ScanNet monocular depth estimation (val)"), Ours="`mask3d`")["Runs"] == "0"
    smoke = _table(md, "synthetic depth")
    assert smoke[0]["depth/RMSE_log"] == "0.200 ± 0.000" and smoke[0]["depth/AbsRel"] == "0.274 ± 0.000"
    assert smoke[0]["Runs"] == "2"


def test_a_reference_on_another_split_is_shown_with_its_split_and_never_compared(tmp_path):
    """Mask3D's Cityscapes number is on test (as its source says); our runs are on val: separate rows, no Δ."""
    _run(dataset="cityscapes", init="mask3d", backbone="vit_b", metrics={"sem_seg/mIoU": 50.0})
    md = report.build([report.store_path()], tmp_path)
    table = _table(md, "Cityscapes semantic segmentation (val; test where the Split column says so)")
    paper = _row(table, Reference="Mask3D")
    assert (paper["Split"], paper["mIoU paper"], paper["Ours"], paper["Δ mIoU"]) == ("test", "66.4†", "", "")
    ours = _row(table, Ours="`mask3d`")
    assert (ours["Split"], ours["mIoU ours"], ours["Δ mIoU"], ours["Runs"]) == ("val", "50.00", "", "1")
    assert _row(table, Reference="Pri3D (View)", **{"Pre-training data": "KITTI"})["Split"] == "val"
