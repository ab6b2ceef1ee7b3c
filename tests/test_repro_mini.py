"""`make repro-mini` end to end at the toy size: data, pre-trainings, probes, the recipe grid on held-out
training scenes, fine-tunes with the chosen recipe and the 2x-length run, records in the campaign store, the
report's "Mini reproduction" section; a second run reuses everything; other settings cannot mix into the same
folder; the ablation is its own campaign."""

import re
import shutil

from benchmark.campaign.repro_mini import DEFAULT_OBJECTIVES
from results.store import read_records
from tools import repro_mini

INITS = ("random", *DEFAULT_OBJECTIVES)


def _argv(out, root, *extra):
    return ["--toy", "--jobs", "2", "--out", str(out), "--data-root", str(root), *extra]


def test_toy_reproduction_writes_records_and_report_then_resumes(synthetic_root, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _argv(out, synthetic_root, "--seeds", "2")
    assert repro_mini.main(argv) == 0
    console = capsys.readouterr().out
    for stage in ("1/5 data", "2/5 pretrain", "3/5 probe", "4/5 finetune", "5/5 report"):
        assert f"stage {stage}" in console
    assert re.search(r"^repro-mini: 3 pre-trainings, 4 probes, 17 fine-tunes in [\d.]+ min; mIoU ", console, re.M)

    records = read_records(out / "records.jsonl")  # a toy run keeps its records beside its runs
    assert all(r["tag"] == "repro-mini" and r["wall_s"] >= 0 for r in records)
    by_stage = {}
    for r in records:
        by_stage.setdefault(r["stage"], []).append(r)
    assert sorted(r["objective"] for r in by_stage["pretrain"]) == sorted(DEFAULT_OBJECTIVES)
    probes = by_stage["probe"]
    assert sorted((r.get("objective") or "random", r["task"]) for r in probes) == sorted(
        (i, t) for i in INITS for t in ("semseg", "depth")
    )
    grid = by_stage["grid"]
    assert {(r["init"], r["layer_decay"]) for r in grid} == {(i, d) for i in INITS for d in (0.65, 1.0)}
    assert all(r["split"] == "holdout" for r in grid)  # chosen on held-out training scenes, never on val
    main = by_stage["main"]
    assert sorted((r["init"], r["seed"]) for r in main) == sorted((i, s) for i in INITS for s in (0, 1))
    for r in main:
        assert (r["split"], r["data_fraction"]) == ("val", 100.0)
        best = max((g for g in grid if g["init"] == r["init"]), key=lambda g: g["metrics"]["sem_seg/mIoU"])
        assert (r["lr"], r["layer_decay"]) == (best["lr"], best["layer_decay"])
        assert ("curve" in r) == (r["seed"] == 0)
        assert r.get("objective") == (None if r["init"] == "random" else r["init"])
    (long,) = by_stage["long"]
    assert long["init"] == "random" and long["iterations"] == 2 * main[0]["iterations"] and len(long["curve"]) == 2

    report = (out / "report" / "REPORT.md").read_text()
    assert "## Mini reproduction" in report
    assert (out / "summary.json").is_file()

    # Re-running trains nothing and stores nothing twice.
    assert repro_mini.main(argv) == 0
    console = capsys.readouterr().out
    assert "3 runs, 3 already finished (skipped), 0 to run" in console
    assert "17 runs, 17 already finished (skipped), 0 to run" in console
    assert not re.search(r"(pretrain|finetune|grid|probe) \S+.*: started", console)
    assert len(read_records(out / "records.jsonl")) == len(records)

    # The same folder refuses other settings instead of mixing runs.
    assert repro_mini.main(argv + ["--finetune-iters", "5"]) == 1
    assert "holds runs made with other settings (differing: finetune_iters)" in capsys.readouterr().err


def test_the_ablation_pretrains_each_mask_ratio_setting_and_probes_it(synthetic_root, tmp_path, capsys):
    out = tmp_path / "ablation"
    assert repro_mini.main(_argv(out, synthetic_root, "--ablation", "--no-report")) == 0
    assert re.search(r"^repro-mini-ablation: 5 pre-trainings, 6 probes, 0 fine-tunes", capsys.readouterr().out, re.M)
    records = read_records(out / "records.jsonl")
    assert all(r["tag"] == "repro-mini-ablation" for r in records)
    settings = {(r["rgb_mask_ratio"], r["depth_mask_ratio"]) for r in records if r["kind"] == "pretrain"}
    assert settings == {(0.75, 0.75), (0.5, 0.75), (0.9, 0.75), (0.75, 0.5), (0.75, 0.9)}
    probed = {(r["rgb_mask_ratio"], r["depth_mask_ratio"]) for r in records if r["kind"] == "probe"}
    assert probed == settings | {(None, None)}  # and the random encoder as the reference


def test_a_failed_pretraining_skips_its_runs_and_fails_the_command(synthetic_root, tmp_path, capsys):
    argv = _argv(
        tmp_path / "out",
        synthetic_root,
        "--objectives",
        "mae",
        "--no-report",
        "--set-pretrain",
        "model.no_such_key=1",
    )
    assert repro_mini.main(argv) == 1
    console = capsys.readouterr().out
    assert "pretrain mae seed0: FAILED" in console and "no such key" in console  # the log's last lines are shown
    assert "finetune mae 100% seed0: not run, because" in console
    assert "probe mae seed0: not run, because pretrain mae seed0 failed" in console
    assert "finetune random 100% seed0: done" in console  # independent runs still go on
    assert re.search(r"^repro-mini: \d+ run\(s\) FAILED \(pretrain mae seed0, ", console, re.M)
    assert {r["init"] for r in read_records(tmp_path / "out" / "records.jsonl")} == {"random"}


def test_a_committed_campaign_resumes_from_its_store_and_reruns_only_what_a_longer_length_changes(
    synthetic_root, tmp_path, capsys
):
    out, store = tmp_path / "out", tmp_path / "store.jsonl"
    argv = _argv(out, synthetic_root, "--no-report", "--store", str(store))
    assert repro_mini.main(argv) == 0
    stored = read_records(store)
    capsys.readouterr()

    shutil.rmtree(out)  # a clean clone: the committed store, no run folders
    assert repro_mini.main(argv) == 0
    console = capsys.readouterr().out
    for stage in ("pretrain: 3 runs, 3", "probe: 4 runs, 4", "finetune: 13 runs, 13"):
        assert f"{stage} already finished (skipped)" in console
    assert read_records(store) == stored

    shutil.rmtree(out)  # fine-tuning twice as long: the grid (its own length) and the probes stand
    assert repro_mini.main(argv + ["--finetune-iters", "8"]) == 0
    console = capsys.readouterr().out
    assert "pretrain: 3 runs, 0 already finished (skipped), 3 to run" in console  # the new fine-tunes read exports
    assert "probe: 4 runs, 4 already finished" in console and "finetune: 13 runs, 8 already finished" in console
    new = read_records(store)[len(stored) :]
    assert sorted((r["stage"], r["iterations"]) for r in new) == [("long", 16)] + [("main", 8)] * 4
