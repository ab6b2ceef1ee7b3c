"""`make repro-mini` end to end at the toy size: data, three pre-trainings, fine-tunes of each export and of
a random init on the full and the 20 % split, records in the store, the report's "Mini reproduction"
section with its plot; a second run reuses everything; other settings cannot mix into the same folder."""

import re

from benchmark.campaign.repro_mini import INITS, OBJECTIVES
from results.store import read_records
from tools import repro_mini


def test_toy_reproduction_writes_records_and_report_then_resumes(synthetic_root, tmp_path, capsys):
    out, report_dir = tmp_path / "out", tmp_path / "report"
    argv = [
        "--toy",
        "--seeds",
        "2",
        "--jobs",
        "2",
        "--out",
        str(out),
        "--data-root",
        str(synthetic_root),
        "--report-out",
        str(report_dir),
    ]
    assert repro_mini.main(argv) == 0
    console = capsys.readouterr().out
    for stage in ("stage 1/4 data", "stage 2/4 pretrain", "stage 3/4 finetune", "stage 4/4 report"):
        assert stage in console
    assert re.search(r"^repro-mini: 4 pre-trainings, 20 fine-tunes in [\d.]+ min; mIoU 100%: random ", console, re.M)

    records = read_records()  # $MASK3D_RESULTS, a temporary store (tests/conftest.py)
    pretrain = [r for r in records if r["kind"] == "pretrain"]
    finetune = [r for r in records if r["kind"] == "finetune"]
    assert sorted(r["objective"] for r in pretrain) == sorted(OBJECTIVES)
    assert len({r["config_hash"] for r in pretrain}) == 4 and len({r["iterations"] for r in pretrain}) == 1
    assert len(finetune) == 20
    assert all(r["tag"] == "repro-mini" for r in records)
    cells = {}
    for r in finetune:
        assert (r["dataset"], r["split"], r["task"]) == ("synthetic", "val", "semseg")
        assert 0 <= r["metrics"]["sem_seg/mIoU"] <= 100
        assert r.get("objective") == (None if r["init"] == "random" else r["init"])
        cells.setdefault((r["init"], r["data_fraction"]), []).append(r["seed"])
    assert {k: sorted(v) for k, v in cells.items()} == {(i, f): [0, 1] for i in INITS for f in (100, 20)}
    # one recipe for every pre-trained init: only the weights differ between their runs of one split
    assert len({(r["config_hash"], r["data_fraction"]) for r in finetune if r["init"] != "random"}) == 2

    report = (report_dir / "REPORT.md").read_text()
    section = report.split("## Mini reproduction", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| synthetic val")]
    assert len(rows) == 10
    for init in INITS:
        for fraction in ("100", "20"):
            row = next(r for r in rows if re.match(rf"\| synthetic val \| {fraction} \| {init} \|", r))
            assert re.search(r"\| -?\d+\.\d\d ± \d+\.\d\d \| 2 \|", row), row  # mean ± std over 2 seeds
            gaps = row.split("|")[6:8]
            assert bool(gaps[0].strip()) == (init != "random") and bool(gaps[1].strip()) == (init != "mae")
    assert "![mini reproduction mIoU by pre-training](repro_mini.png)" in section
    assert (report_dir / "repro_mini.png").stat().st_size > 1000
    assert (out / "summary.json").is_file()

    # Re-running trains nothing and stores nothing twice.
    assert repro_mini.main(argv) == 0
    console = capsys.readouterr().out
    assert "4 runs, 4 already finished (skipped), 0 to run" in console
    assert "20 runs, 20 already finished (skipped), 0 to run" in console
    assert not re.search(r"(pretrain|finetune) \S+.*: started", console)
    assert len(read_records()) == len(records)

    # The same folder refuses other settings instead of mixing runs.
    assert repro_mini.main(argv + ["--finetune-iters", "5"]) == 1
    assert "holds runs made with other settings (differing: finetune_iters)" in capsys.readouterr().err


def test_a_failed_pretraining_skips_its_finetunes_and_fails_the_command(synthetic_root, tmp_path, capsys):
    argv = [
        "--toy",
        "--seeds",
        "1",
        "--fractions",
        "20",
        "--objectives",
        "mae",
        "--out",
        str(tmp_path / "out"),
        "--data-root",
        str(synthetic_root),
        "--no-report",
        "--set-pretrain",
        "model.no_such_key=1",
    ]
    assert repro_mini.main(argv) == 1
    console = capsys.readouterr().out
    assert "pretrain mae: FAILED" in console and "no such key" in console  # the log's last lines are shown
    assert "finetune mae 20% seed0: not run, because pretrain mae failed" in console
    assert "finetune random 20% seed0: done" in console  # independent runs still go on
    assert re.search(r"^repro-mini: 2 run\(s\) FAILED \(pretrain mae, finetune mae 20% seed0\)", console, re.M)
    assert [r["init"] for r in read_records()] == ["random"]
