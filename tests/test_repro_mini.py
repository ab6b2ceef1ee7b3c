"""`make repro-mini` end to end at the toy size: three data trees, pre-trainings at two lengths with probes, the
matched baseline and the positive control, the recipe grid (two seeds a cell) on held-out training scenes,
fine-tunes at 100 % and 20 % of the labels with the chosen recipe, records in the campaign store, the report's
redesigned section; a second run reuses everything; other settings cannot mix into the same folder; the ablation
is its own campaign."""

import re
import shutil

from benchmark.campaign.repro_mini import BASELINES, DEFAULT_OBJECTIVES
from results.store import read_records
from tools import repro_mini

INITS = (*BASELINES, *DEFAULT_OBJECTIVES)


def _argv(out, root, *extra):
    return ["--toy", "--jobs", "2", "--out", str(out), "--data-root", str(root), *extra]


def test_toy_reproduction_writes_records_and_report_then_resumes(tmp_path, capsys):
    out = tmp_path / "out"
    argv = _argv(out, tmp_path / "data")  # its own data root: the campaign makes three trees there
    assert repro_mini.main(argv) == 0
    console = capsys.readouterr().out
    for stage in ("1/5 data", "2/5 pretrain", "3/5 probe", "4/5 finetune", "5/5 report"):
        assert f"stage {stage}" in console
    assert re.search(r"^repro-mini-2: 7 pre-trainings, 8 probes, 22 fine-tunes in [\d.]+ min; mIoU ", console, re.M)

    records = read_records(out / "records.jsonl")  # a toy run keeps its records beside its runs
    assert all(r["tag"] == "repro-mini-2" and r["wall_s"] >= 0 for r in records)
    by_stage = {}
    for r in records:
        by_stage.setdefault(r["stage"], []).append(r)
    pretrained = {(r["variant"], r["pretrain_iters"], r["pretrain_data"]) for r in by_stage["pretrain"]}
    assert pretrained == {
        ("mask3d 2it", 2, "synthetic_pool_rgbd_train"),
        ("mask3d", 3, "synthetic_pool_rgbd_train"),
        ("mae 2it", 2, "synthetic_pool_rgbd_train"),
        ("mae", 3, "synthetic_pool_rgbd_train"),
        ("none", 3, "synthetic_pool_rgbd_train"),
        ("supervised", 3, "synthetic_control_sem_seg_train"),
        ("mask3d_centred_d2init", 3, "synthetic_pool_rgbd_train"),
    }
    probed = {(r.get("variant") or "random", r["task"]) for r in by_stage["probe"]}
    assert probed == {(v, t) for v in ("random", *(p[0] for p in pretrained)) for t in ("semseg", "depth")}
    grid = by_stage["grid"]
    assert sorted((r["init"], r["seed"]) for r in grid) == sorted((i, s) for i in INITS for s in (0, 1))
    assert all(r["split"] == "holdout" for r in grid)  # chosen on held-out training scenes, never on val
    main = by_stage["main"]
    remedy = "mask3d_centred_d2init"  # judged with mask3d's recipe: no grid of its own
    assert sorted((r["init"], r["data_fraction"]) for r in main) == sorted(
        (i, f) for i in (*INITS, remedy) for f in (100, 20)
    )
    mask3d = {(r["lr"], r["layer_decay"]) for r in main if r["init"] == "mask3d"}
    assert {(r["lr"], r["layer_decay"]) for r in main if r["init"] == remedy} == mask3d
    for r in main:
        assert r["split"] == "val" and ("curve" in r) == (r["seed"] == 0)
        assert r.get("objective") == (None if r["init"] == "random" else r["init"])
        if r["init"] != "random":  # the export of the longest pre-training
            assert r["pretrain"]["output_dir"].endswith(f"pretrain/{r['init']}/seed0")

    report = (out / "report" / "REPORT.md").read_text()
    assert "## Mini reproduction, redesigned" in report and "Positive control at 100 %" in report
    assert (out / "summary.json").is_file()

    # Re-running trains nothing and stores nothing twice.
    assert repro_mini.main(argv) == 0
    console = capsys.readouterr().out
    assert "7 runs, 7 already finished (skipped), 0 to run" in console
    assert "22 runs, 22 already finished (skipped), 0 to run" in console
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


def test_a_failed_pretraining_skips_its_runs_and_fails_the_command(tmp_path, capsys):
    argv = _argv(
        tmp_path / "out",
        tmp_path / "data",
        "--objectives",
        "mae",
        "--fractions",
        "100",
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
    assert re.search(r"^repro-mini-2: \d+ run\(s\) FAILED \(pretrain ", console, re.M)
    assert {r["init"] for r in read_records(tmp_path / "out" / "records.jsonl")} == {"random"}


def test_a_committed_campaign_resumes_from_its_store_and_reruns_only_what_a_longer_length_changes(tmp_path, capsys):
    out, store = tmp_path / "out", tmp_path / "store.jsonl"
    argv = _argv(out, tmp_path / "data", "--objectives", "mae", "--fractions", "100", "--no-report")
    argv += ["--store", str(store)]
    assert repro_mini.main(argv) == 0
    stored = read_records(store)
    capsys.readouterr()

    shutil.rmtree(out)  # a clean clone: the committed store, no run folders
    assert repro_mini.main(argv) == 0
    console = capsys.readouterr().out
    for stage in ("pretrain: 4 runs, 4", "probe: 5 runs, 5", "finetune: 12 runs, 12"):
        assert f"{stage} already finished (skipped)" in console
    assert read_records(store) == stored

    shutil.rmtree(out)  # fine-tuning twice as long: the grid (its own length) and the probes stand
    assert repro_mini.main(argv + ["--finetune-iters", "8"]) == 0
    console = capsys.readouterr().out
    # the new fine-tunes read the exports of the longest pre-trainings; the shorter one stays finished
    assert "pretrain: 4 runs, 1 already finished (skipped), 3 to run" in console
    assert "probe: 5 runs, 5 already finished" in console and "finetune: 12 runs, 8 already finished" in console
    new = read_records(store)[len(stored) :]
    assert sorted((r["stage"], r["iterations"]) for r in new) == [("main", 8)] * 4
