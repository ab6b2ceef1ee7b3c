"""Linear probes on frozen encoders: both protocols end to end, chance level without information, exact
features of an export, bad inputs."""

import json

import numpy as np
import pytest
import torch

from benchmark import inits, probe
from benchmark.depth import read_depth_metres
from benchmark.depth_eval import depth_metrics
from core.runs import FINISHED_MARKER
from pretrain.export import export_state
from pretrain.model import MaskedRGBD
from results.report import build
from results.store import read_records, store_path


def test_both_probes_end_to_end(synthetic_root, tmp_path, capsys):
    records = probe.probe("random", "synthetic", output_root=str(tmp_path / "a"), tag="t")
    semseg, depth = records
    assert (semseg["kind"], semseg["task"], semseg["protocol"], semseg["split"]) == ("probe", "semseg", "linear", "val")
    assert 0 < semseg["metrics"]["sem_seg/mIoU"] <= 100 and 0 < semseg["metrics"]["sem_seg/pACC"] <= 100
    assert depth["task"] == "depth" and 0 < depth["metrics"]["depth/delta1"] <= 1
    assert 0 < depth["metrics"]["depth/AbsRel"] < 1  # a log-depth bias alone is already within 100 %
    stored = read_records()
    assert [r["task"] for r in stored] == ["semseg", "depth"] and all(r["kind"] == "probe" for r in stored)
    for r in records:
        folder = tmp_path / "a" / "synthetic" / r["task"] / "random" / "seed0"
        assert (folder / FINISHED_MARKER).is_file()
        assert json.loads((folder / "metrics.json").read_text())["record"]["metrics"] == r["metrics"]

    text = build([store_path()], tmp_path / "report")
    assert "## Frozen-encoder linear probes" in text
    assert "| synthetic | val | semseg | random | random | vit_e192d6 | t |" in text

    again = probe.probe("random", "synthetic", output_root=str(tmp_path / "a"))  # finished: nothing re-run
    assert again == records and len(read_records()) == 2
    capsys.readouterr()
    argv = ["--init", "random", "--dataset", "synthetic", "--task", "semseg", "--output-dir", str(tmp_path / "b")]
    assert probe.main(argv) == 0
    assert read_records()[-1]["metrics"] == semseg["metrics"]  # deterministic on CPU
    console = capsys.readouterr().out  # a line per step and a summary in plain numbers; the raw dict goes to log.txt
    assert "OrderedDict" not in console and "np.float64(" not in console and len(console.splitlines()) == 3
    miou = semseg["metrics"]["sem_seg/mIoU"]
    assert console.splitlines()[-1].startswith("probe: vit_e192d6 init random on synthetic val in ")
    assert console.splitlines()[-1].endswith(
        f"sem_seg/mIoU {miou:.2f} %, sem_seg/pACC {semseg['metrics']['sem_seg/pACC']:.2f} %"
    )
    assert "OrderedDict" in (tmp_path / "b" / "synthetic" / "semseg" / "random" / "seed0" / "log.txt").read_text()


def _constant_encoder(channels=8):
    def features(image):
        b, _, h, w = image.shape
        return torch.ones(b, channels, h // 8, w // 8)

    return probe.Encoder(features, (96, 128), "const", "const")


def test_constant_features_give_chance_level(synthetic_root, tmp_path):
    """Features that carry no information leave the head its bias alone: one class everywhere, one depth
    everywhere. Anything better would mean labels leak into the probe some other way."""
    semseg, depth = probe.probe("random", "synthetic", output_root=str(tmp_path), encoder=_constant_encoder())
    ious = {k: v for k, v in semseg["metrics"].items() if k.startswith("sem_seg/IoU-")}
    assert sum(v > 0 for v in ious.values()) <= 1  # a single predicted class
    val = probe.split_dicts("synthetic")[1]
    gts = [read_depth_metres(d["depth_file_name"]) for d in val]
    best = 0.0
    for c in np.geomspace(0.3, 10, 400):  # the best any constant prediction can do
        per_image = [depth_metrics(np.full_like(g, c), g, (g >= 1e-3) & (g <= 10)) for g in gts]
        best = max(best, float(np.mean([m["delta1"] for m in per_image if m])))
    assert depth["metrics"]["depth/delta1"] <= best + 1e-6


def test_export_features_are_the_encoders(tmp_path):
    """A Mask3D export probed at its own resolution yields exactly the pre-training encoder's features."""
    torch.manual_seed(0)
    model = MaskedRGBD(objective="none", embed_dim=32, depth=2, num_heads=2, patch_size=8, img_size=(48, 64)).eval()
    path = tmp_path / "backbone.pth"
    torch.save(export_state({"model": model.state_dict(), "arch": model.arch()}, "test"), path)
    encoder = probe.build_encoder(inits.parse(f"mask3d:{path}"))
    assert encoder.size == (48, 64) and encoder.objective == "none" and encoder.backbone == "vit_e32d2"
    image = torch.randint(0, 256, (2, 3, 48, 64)).float()
    with torch.no_grad():
        torch.testing.assert_close(encoder.features(image), model.features(image), rtol=1e-5, atol=1e-5)
    like = probe.build_encoder(inits.parse("random"), like=path)
    assert like.size == (48, 64) and like.features(image).shape == (2, 32, 6, 8)


def test_bad_inputs(synthetic_root, tmp_path):
    with pytest.raises(probe.ProbeError, match="unknown probe task"):
        probe.probe("random", "synthetic", tasks=("insseg",), output_root=str(tmp_path))
    with pytest.raises(probe.ProbeError, match="no probe splits"):
        probe.split_dicts("cityscapes")
    with pytest.raises(inits.InitError, match="does not exist"):
        probe.probe(f"mask3d:{tmp_path / 'absent.pth'}", "synthetic", output_root=str(tmp_path))
    bad = tmp_path / "meta.pth"
    torch.save({"model": {}, "meta": {"embed_dim": 8}}, bad)
    with pytest.raises(probe.ProbeError, match="meta lacks"):
        probe.build_encoder(inits.parse("random"), like=bad)
    assert (
        probe.main(["--init", "random", "--dataset", "synthetic", "--task", "depth,seg", "--output-dir", str(tmp_path)])
        == 1
    )


def test_timm_vit_init_runs_at_the_probe_size(tmp_path):
    import timm

    path = tmp_path / "vit_t.pth"
    torch.save({"model": timm.create_model("vit_tiny_patch16_224", pretrained=False).state_dict()}, path)
    encoder = probe.build_encoder(inits.parse(f"mae:{path}"))
    assert (encoder.size, encoder.backbone, encoder.init) == (probe.PROBE_SIZE, "vit_t", "mae")
    assert encoder.features(torch.zeros(1, 3, 96, 128)).shape == (1, 192, 6, 8)
