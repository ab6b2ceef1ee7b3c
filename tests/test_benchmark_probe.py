"""Linear probes on frozen encoders: both protocols end to end, chance level without information, exact
features of an export, bad inputs."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark import inits, probe
from benchmark.depth import read_depth_metres
from core.runs import FINISHED_MARKER
from datasets.fileio import read_label_png
from pretrain.export import export_state
from pretrain.model import MaskedRGBD
from results.report import build
from results.store import read_records, store_path


def test_both_probes_end_to_end(synthetic_root, tmp_path, monkeypatch, capsys):
    nets = []

    class RecordingViT(probe.GridViT):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            nets.append(self)

    monkeypatch.setattr(probe, "GridViT", RecordingViT)
    encoder = probe.build_encoder(inits.parse("random"))
    (net,) = nets
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    records = probe.probe("random", "synthetic", output_root=str(tmp_path / "a"), tag="t", encoder=encoder)
    # the encoder stays frozen: no trainable parameter, eval mode, every weight as built
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert net.state_dict().keys() == weights.keys() and all(
        torch.equal(v, weights[k]) for k, v in net.state_dict().items()
    )
    assert not encoder.features(torch.zeros(1, 3, 96, 128)).requires_grad
    semseg, depth = records
    assert (semseg["kind"], semseg["task"], semseg["protocol"], semseg["split"]) == ("probe", "semseg", "linear", "val")
    assert 0 < semseg["metrics"]["sem_seg/mIoU"] <= 100 and 0 < semseg["metrics"]["sem_seg/pACC"] <= 100
    assert depth["task"] == "depth" and 0 < depth["metrics"]["depth/delta1"] <= 1
    assert 0 < depth["metrics"]["depth/AbsRel"] < 1  # a log-depth bias alone is already within 100 %
    # Detectron2's random ViT: its health on the train frames, the same in both records
    health = {k: semseg["metrics"][k] for k in ("encoder_rms", "encoder_shared_share")}
    assert health == {k: depth["metrics"][k] for k in health} and 0 < health["encoder_shared_share"] < 1
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


def _pooled_encoder():
    """Cheap features that do carry information: each 8x8 patch's mean colour."""
    return probe.Encoder(lambda image: F.avg_pool2d(image.float(), 8), (96, 128), "pool", "pool")


@pytest.fixture
def probes_made(monkeypatch):
    """Every `LinearProbe` the runs build, with the head bias it started from."""
    made = []

    class Recording(probe.LinearProbe):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.initial_bias = self.head.bias.detach().clone()
            made.append(self)

    monkeypatch.setattr(probe, "LinearProbe", Recording)
    return made


def _valid_depths(dicts):
    return [
        g[(g >= 1e-3) & (g <= 10)].astype(np.float64) for g in (read_depth_metres(d["depth_file_name"]) for d in dicts)
    ]


def test_constant_features_give_chance_level(synthetic_root, tmp_path, probes_made):
    """Features that carry no information leave the head its bias alone: one class everywhere, one depth
    everywhere. The metrics are then those of that constant prediction, computed here by hand from the label
    and depth files (anything better would mean labels leak into the probe some other way)."""
    semseg, depth = probe.probe("random", "synthetic", output_root=str(tmp_path), encoder=_constant_encoder())
    seg_probe, depth_probe = probes_made
    train, val = probe.split_dicts("synthetic")

    # semantic: the class of the largest bias, everywhere; Detectron2's mIoU averages over the classes in the GT
    predicted = int(seg_probe.head.bias.argmax())
    labels = np.concatenate([read_label_png(d["sem_seg_file_name"]).ravel() for d in val])
    labels = labels[labels != 255]
    hit = float(np.mean(labels == predicted))
    m = semseg["metrics"]
    assert m["sem_seg/pACC"] == pytest.approx(100 * hit)
    assert m["sem_seg/mIoU"] == pytest.approx(100 * hit / len(np.unique(labels)))

    # depth: the head starts at the mean train log depth and predicts exp(bias) metres everywhere
    assert float(depth_probe.initial_bias) == pytest.approx(float(np.log(np.concatenate(_valid_depths(train))).mean()))
    assert not depth_probe.head.weight.any()  # zero features: the weights never move from zero
    c = float(np.exp(np.float64(depth_probe.head.bias.item())))
    gts = _valid_depths(val)
    expected = {
        "depth/AbsRel": np.mean([np.mean(np.abs(c - g) / g) for g in gts]),
        "depth/RMSE": np.mean([np.sqrt(np.mean((c - g) ** 2)) for g in gts]),
        "depth/delta1": np.mean([np.mean(np.maximum(c / g, g / c) < 1.25) for g in gts]),
    }
    assert {k: depth["metrics"][k] for k in expected} == pytest.approx(expected, rel=1e-5)
    # the encoder's health: every token the same vector of ones
    for record in (semseg, depth):
        assert (record["metrics"]["encoder_rms"], record["metrics"]["encoder_shared_share"]) == (1.0, 1.0)


def test_the_probe_is_fitted_on_train_features_alone(synthetic_root, probes_made):
    """Changing every val feature leaves the standardisation statistics and the fitted head as they were."""
    encoder = _pooled_encoder()
    train_dicts, val_dicts = probe.split_dicts("synthetic")
    train, val = probe.load_frames(train_dicts, encoder), probe.load_frames(val_dicts, encoder)
    shifted = dataclasses.replace(val, features=val.features * 3 + 50)
    for task in probe.TASKS:
        probe.RUNNERS[task](train, val, "synthetic", 0)
        probe.RUNNERS[task](train, shifted, "synthetic", 0)
    for fitted, with_shifted_val in (probes_made[0:2], probes_made[2:4]):
        torch.testing.assert_close(fitted.mean, train.features.mean((0, 2, 3), keepdim=True), rtol=0, atol=0)
        torch.testing.assert_close(fitted.std, train.features.std((0, 2, 3), keepdim=True), rtol=0, atol=0)
        assert fitted.head.weight.any()  # informative features: the head did learn
        for key, value in fitted.state_dict().items():
            assert torch.equal(with_shifted_val.state_dict()[key], value), key


@pytest.mark.parametrize("centre_pos", [False, True])
def test_export_features_are_the_encoders(tmp_path, centre_pos):
    """A Mask3D export probed at its own resolution yields exactly the pre-training encoder's features, with its
    position table centred or not (the export carries the table)."""
    torch.manual_seed(0)
    model = MaskedRGBD(
        objective="none", embed_dim=32, depth=2, num_heads=2, patch_size=8, img_size=(48, 64), centre_pos=centre_pos
    ).eval()
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
