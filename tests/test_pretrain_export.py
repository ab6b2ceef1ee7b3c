"""`python -m pretrain.export` never overwrites a result: not its own input, not an existing file without --force."""

import torch

from pretrain.export import main
from pretrain.model import MaskedRGBD


def _checkpoint(folder):
    pre = MaskedRGBD(
        objective="mask3d",
        embed_dim=32,
        depth=2,
        num_heads=2,
        img_size=(64, 96),
        decoder_dim=32,
        decoder_depth=1,
        decoder_heads=2,
    )
    torch.save({"model": pre.state_dict(), "arch": pre.arch(), "iteration": 3}, folder / "checkpoint.pth")
    return folder / "checkpoint.pth"


def test_export_refuses_its_input_and_existing_files_unless_forced(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path)
    before = ckpt.read_bytes()
    assert main([str(tmp_path), str(ckpt)]) == 1
    assert f"{ckpt} is the checkpoint being exported" in capsys.readouterr().err
    assert main([str(ckpt), str(tmp_path / "." / "checkpoint.pth"), "--force"]) == 1  # --force never allows that
    assert "is the checkpoint being exported" in capsys.readouterr().err
    assert ckpt.read_bytes() == before

    out = tmp_path / "backbone.pth"
    out.write_bytes(b"an earlier export")
    assert main([str(tmp_path), str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{out} already exists" in err and "--force" in err
    assert out.read_bytes() == b"an earlier export"
    assert main([str(tmp_path), str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err

    assert main([str(tmp_path), str(out), "--force"]) == 0
    assert torch.load(out, weights_only=True)["meta"]["iteration"] == 3
    assert main([str(tmp_path), str(tmp_path / "new.pth")]) == 0
    assert ckpt.read_bytes() == before
