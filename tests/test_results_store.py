"""The results store: an append is all or nothing, and a bad byte or a missing store is named, never skipped."""

import builtins
import errno
import json

import pytest

from results import report, store
from results.runs import load_runs
from results.store import RecordError, StoreWriteError, append_record, read_records


def _record(**kw):
    return {
        "kind": "finetune",
        "dataset": "synthetic",
        "split": "val",
        "task": "semseg",
        "backbone": "vit_b",
        "init": "random",
        "seed": 0,
        "metrics": {"sem_seg/mIoU": 50.0},
        "date": "2026-01-01T00:00:00+00:00",
        **kw,
    }


def test_a_full_disk_mid_append_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    """The disk fills after one byte of the write: whatever file the append writes to, the store keeps every
    byte it had (records of unequal length, so no prefix of the new contents can equal the old store)."""
    path = tmp_path / "runs.jsonl"
    append_record(_record(seed=1), path)
    before = path.read_bytes()

    def one_byte_then_enospc(file, mode="r", *args, **kwargs):
        f = builtins.open(file, mode, *args, **kwargs)
        if "w" in mode or "a" in mode:

            def write(data):
                builtins.type(f).write(f, data[:1])
                f.flush()
                raise OSError(errno.ENOSPC, "No space left on device")

            f.write = write
        return f

    monkeypatch.setattr(store, "open", one_byte_then_enospc, raising=False)
    with pytest.raises(StoreWriteError, match="No space left on device") as err:
        append_record(_record(seed=2, tag="a longer second record"), path)
    assert str(path) in str(err.value) and "unchanged" in str(err.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.jsonl", "runs.jsonl.lock"]  # no temp left behind
    monkeypatch.undo()
    append_record(_record(seed=3), path)
    assert [r["seed"] for r in read_records(path)] == [1, 3]


def test_a_torn_last_line_from_an_older_writer_stays_on_its_own_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(_record(seed=1)) + "\n" + '{"kind": "fine')
    append_record(_record(seed=2), path)
    lines = path.read_text().splitlines()
    assert lines[1] == '{"kind": "fine' and json.loads(lines[2])["seed"] == 2
    with pytest.raises(RecordError, match=f"{path}:2: not valid JSON"):
        read_records(path)


def test_a_non_utf8_byte_is_reported_with_file_line_and_column(tmp_path, capsys):
    path = tmp_path / "runs.jsonl"
    append_record(_record(seed=1), path)
    with open(path, "ab") as f:
        f.write(json.dumps(_record(seed=2, tag="caf\u00e9"), ensure_ascii=False).encode("latin-1") + b"\n")
    with pytest.raises(RecordError, match=rf"{path}:2: byte 0xe9 at column \d+ is not UTF-8"):
        read_records(path)
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    out = tmp_path / "out"
    assert report.main(["--campaigns", str(campaigns), "--store", str(path), "--out", str(out)]) == 1
    assert f"{path}:2: byte 0xe9" in capsys.readouterr().err and not out.exists()


def test_a_store_the_report_reads_must_exist(tmp_path):
    assert read_records(tmp_path / "none.jsonl") == []  # no run has finished yet: writers start from empty
    with pytest.raises(RecordError, match=f"{tmp_path / 'none.jsonl'}: no such run store"):
        load_runs([tmp_path / "none.jsonl"])


def test_a_repeated_record_is_refused_on_append_and_named_by_the_report(tmp_path, capsys):
    path = tmp_path / "runs.jsonl"
    first, second = _record(seed=1, output_dir="output/a"), _record(seed=2, output_dir="output/b")
    append_record(first, path)
    append_record(second, path)
    before = path.read_bytes()
    with pytest.raises(RecordError, match=f"{path}:1: already holds this record") as err:
        append_record(dict(first, metrics={"sem_seg/mIoU": 40.0}), path)  # same run folder and date
    assert "finetune semseg of output/a at 2026-01-01T00:00:00+00:00" in str(err.value)
    assert path.read_bytes() == before
    with open(path, "ab") as f:  # a line repeated verbatim, as by a copy and paste
        f.write(before.splitlines(keepends=True)[0])
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    out = tmp_path / "out"
    assert report.main(["--campaigns", str(campaigns), "--store", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3: repeats the record of line 1 (finetune semseg of output/a" in err
    assert "a run counts once: delete one of the two lines" in err and not out.exists()


def test_an_append_through_a_symlinked_store_reaches_its_target(tmp_path):
    real = tmp_path / "shared" / "runs.jsonl"
    append_record(_record(seed=1), real)
    link = tmp_path / "runs.jsonl"
    link.symlink_to(real)
    append_record(_record(seed=2), link)
    assert link.is_symlink() and [r["seed"] for r in read_records(real)] == [1, 2]


def test_a_full_disk_during_the_append_carries_its_errno_for_the_one_line_error(tmp_path, monkeypatch):
    from core import cli

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "atomic_path", full)
    with pytest.raises(StoreWriteError) as err:
        append_record(_record(), tmp_path / "runs.jsonl")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "runs.jsonl")
    assert cli.user_message(err.value, ()) == f"{tmp_path / 'runs.jsonl'}: No space left on device; {cli.ADVICE}"
