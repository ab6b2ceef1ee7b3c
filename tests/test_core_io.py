"""core.io: writes are all-or-nothing, reads of damaged checkpoints name the file."""

import math

import pytest
import torch

from core import io


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    io.write_json(target, {"a": 1})

    def boom(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        io.atomic_write(target, boom)
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_json_refuses_nan_instead_of_writing_an_unreadable_file(tmp_path):
    with pytest.raises(ValueError):
        io.write_json(tmp_path / "m.json", {"loss": math.nan})
    assert not (tmp_path / "m.json").exists()


def test_torch_round_trip_and_truncated_checkpoint_is_named(tmp_path):
    path = io.save_torch({"w": torch.arange(1000.0)}, tmp_path / "model.pth")
    assert torch.equal(io.load_torch(path)["w"], torch.arange(1000.0))
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(io.CheckpointError, match=r"cut\.pth: cannot be read as a PyTorch checkpoint"):
        io.load_torch(cut)
    with pytest.raises(io.CheckpointError, match=r"absent\.pth: checkpoint file is missing"):
        io.load_torch(tmp_path / "absent.pth")


def test_checkpoint_reader_never_runs_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, path)
    with pytest.raises(io.CheckpointError, match="evil.pth"):
        io.load_torch(path)


def test_stale_temps_of_interrupted_writes_are_removed(tmp_path):
    (tmp_path / ".model.pth.abc123.tmp").write_bytes(b"partial")
    (tmp_path / "model.pth").write_bytes(b"kept")
    assert [p.name for p in io.remove_stale_temps(tmp_path)] == [".model.pth.abc123.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]


def test_weights_reader_takes_safetensors_and_names_a_truncated_one(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(3)}, str(tmp_path / "a.safetensors"))
    assert torch.equal(io.load_weights(tmp_path / "a.safetensors")["w"], torch.ones(3))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes((tmp_path / "a.safetensors").read_bytes()[:20])
    with pytest.raises(io.CheckpointError, match=r"cut\.safetensors: cannot be read as safetensors"):
        io.load_weights(cut)
    assert torch.equal(io.load_weights(io.save_torch({"w": torch.zeros(2)}, tmp_path / "b.pth"))["w"], torch.zeros(2))


def test_a_folder_or_a_text_file_is_named_for_what_it_is_and_never_told_to_drop_weights_only(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(io.CheckpointError) as err:
        io.load_weights(tmp_path / "run", "mae checkpoint")
    assert str(err.value) == f"{tmp_path / 'run'}: is a folder, not a mae checkpoint file; name the .pth or " + (
        ".safetensors file in it"
    )
    for text in ('{"model": "vit_b"}\n', "see https://example.org/weights\n", "a,b\n1,2\n"):
        (tmp_path / "notes.pth").write_text(text)
        with pytest.raises(io.CheckpointError) as err:
            io.load_weights(tmp_path / "notes.pth")
        first = text.splitlines()[0]
        assert str(err.value) == (
            f"{tmp_path / 'notes.pth'}: cannot be read as a PyTorch checkpoint: it is a text file (it begins "
            f"{first!r}); pass the weights file itself"
        )
    torch.save({"model": {"w": torch.ones(1)}, "args": __import__("argparse").Namespace(lr=1)}, tmp_path / "mae.pth")
    with pytest.raises(
        io.CheckpointError,
        match=r"mae\.pth: cannot be read .*: it holds Python objects other than tensors \(e\.g\. argparse",
    ) as err:
        io.load_weights(tmp_path / "mae.pth")
    assert "weights_only" not in str(err.value)
