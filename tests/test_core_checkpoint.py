"""core.checkpoint: atomic saves, and resume reads only the run folder's own `.pth` files, never a pickle."""

import os
import pickle
from pathlib import Path

import pytest
import torch

from core.checkpoint import AtomicCheckpointer
from core.io import CheckpointError


class _Touch:
    """Unpickling this creates a file: proof that a loader ran code from the file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return Path(self.path).touch, ()


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def test_resume_restores_model_optimizer_and_extra_state(tmp_path):
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    AtomicCheckpointer(model, str(tmp_path), optimizer=opt).save("model_0000004", iteration=4)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000004.pth"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    fresh = torch.nn.Linear(3, 2)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    extra = AtomicCheckpointer(fresh, str(tmp_path), optimizer=fresh_opt).resume_or_load("", resume=True)
    assert extra == {"iteration": 4}
    assert torch.equal(fresh.weight, model.weight)
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


@pytest.mark.parametrize("name", ["model.pkl", "../outside.pth", "ABSOLUTE", "sub/model.pth", "link.pth"])
def test_resume_refuses_what_is_not_a_pth_file_of_the_folder(tmp_path, name):
    run, touched = tmp_path / "run", tmp_path / "code-ran"
    model = _model()
    AtomicCheckpointer(model, str(run)).save("model_final")
    (run / "model.pkl").write_bytes(pickle.dumps({"model": _Touch(touched)}))
    (run / "sub").mkdir()
    (run / "sub" / "model.pth").write_bytes((run / "model_final.pth").read_bytes())
    (tmp_path / "outside.pth").write_bytes((run / "model_final.pth").read_bytes())
    os.symlink(tmp_path / "outside.pth", run / "link.pth")
    if name == "ABSOLUTE":
        name = str(tmp_path / "outside.pth")
    (run / "last_checkpoint").write_text(name)
    with pytest.raises(CheckpointError, match="resumes only from a .pth checkpoint inside its own folder"):
        AtomicCheckpointer(_model(), str(run)).resume_or_load("", resume=True)
    assert not touched.exists()


def test_resume_reads_weights_only(tmp_path):
    touched = tmp_path / "code-ran"
    torch.save({"model": _model().state_dict(), "extra": _Touch(touched)}, tmp_path / "model_final.pth")
    (tmp_path / "last_checkpoint").write_text("model_final.pth")
    with pytest.raises(CheckpointError, match="model_final.pth: cannot be read"):
        AtomicCheckpointer(_model(), str(tmp_path)).resume_or_load("", resume=True)
    assert not touched.exists()
