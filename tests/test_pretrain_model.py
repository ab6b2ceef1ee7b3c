"""pretrain/ model pieces: masking, patchify, losses, objectives, init checkpoints, export to Detectron2."""

from functools import partial

import pytest
import torch
from torch import nn

from pretrain.export import PREFIX, export_state
from pretrain.masking import gather_tokens, patchify, random_masking, unpatchify
from pretrain.model import MaskedRGBD, depth_loss, load_encoder_weights

SMALL = dict(preset="vit_t", embed_dim=32, depth=2, num_heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2)


def _batch(b=2, h=64, w=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (b, 3, h, w), generator=g, dtype=torch.uint8)
    depth = 0.5 + 4 * torch.rand(b, 1, h, w, generator=g)
    depth[:, :, :5] = 0  # a band of invalid readings
    return image, depth, depth > 0


def test_patchify_round_trip_and_layout_on_non_square_input():
    x = torch.randn(2, 3, 96, 128)
    p = patchify(x, 16)
    assert p.shape == (2, 6 * 8, 16 * 16 * 3)
    assert torch.equal(unpatchify(p, 16, (6, 8)), x)
    # Row-major: patch r * 8 + c is the image region (r, c), the order of Detectron2's token map.
    r, c = 4, 5
    region = x[1, :, r * 16 : (r + 1) * 16, c * 16 : (c + 1) * 16].permute(1, 2, 0).reshape(-1)
    assert torch.equal(p[1, r * 8 + c], region)
    assert patchify(torch.zeros(1, 1, 240, 320), 16).shape == (1, 15 * 20, 256)


def test_size_not_divisible_by_patch_is_a_clear_error():
    with pytest.raises(ValueError, match="not divisible by patch size 16"):
        patchify(torch.zeros(1, 3, 100, 128), 16)
    with pytest.raises(ValueError, match="not divisible"):
        MaskedRGBD(img_size=(250, 320), **SMALL)


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.75, 0.9])
def test_random_masking_counts_and_restore_inverts_shuffle(ratio):
    b, n = 3, 300
    keep, restore, mask = random_masking(b, n, ratio, generator=torch.Generator().manual_seed(1))
    n_keep = int(n * (1 - ratio))
    assert keep.shape == (b, n_keep) and restore.shape == (b, n)
    assert (mask.sum(1) == n - n_keep).all()
    assert not mask.gather(1, keep).any()  # kept patches are exactly the unmasked ones
    tokens = torch.arange(n).repeat(b, 1).unsqueeze(-1).float()
    visible = gather_tokens(tokens, keep)
    filled = torch.cat([visible, torch.full((b, n - n_keep, 1), -1.0)], dim=1)
    unshuffled = gather_tokens(filled, restore)[..., 0]
    assert torch.equal(unshuffled[~mask], tokens[..., 0][~mask])  # visible tokens back in place
    assert (unshuffled[mask] == -1).all()  # mask tokens exactly where hidden
    if 0 < ratio:
        assert not torch.equal(mask[0], mask[1])  # per-sample masks


def test_mask_ratios_outside_unit_interval_are_rejected():
    with pytest.raises(ValueError, match=r"rgb_mask_ratio=1.0 is outside \[0, 1\)"):
        MaskedRGBD(rgb_mask_ratio=1.0, **SMALL)
    with pytest.raises(ValueError, match="depth_mask_ratio"):
        MaskedRGBD(depth_mask_ratio=-0.1, **SMALL)


@pytest.mark.parametrize("norm", ["metric", "image", "patch"])
@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_depth_loss_ignores_visible_patches_and_invalid_depth(norm, kind):
    _, depth, valid = _batch()
    p, n = 16, 4 * 6
    mask = torch.zeros(2, n, dtype=torch.bool)
    mask[:, ::2] = True  # even patches hidden; patch 0 (top-left) holds invalid rows
    pred = torch.randn(2, n, p * p)
    base = depth_loss(pred, depth, valid, mask, p, norm, kind)

    pred_vis = pred.clone()
    pred_vis[:, 1::2] += 100.0  # visible patches
    assert torch.allclose(depth_loss(pred_vis, depth, valid, mask, p, norm, kind), base)

    pred_inv = pred.clone()
    pred_inv[:, 0, : 5 * p] += 100.0  # the invalid rows of a hidden patch
    assert torch.allclose(depth_loss(pred_inv, depth, valid, mask, p, norm, kind), base)

    depth_inv = depth.clone()
    depth_inv[~valid] = 0.0
    depth_inv[:, :, :5] = 7.0  # garbage where marked invalid changes nothing (targets, statistics)
    assert torch.allclose(depth_loss(pred, depth_inv, valid, mask, p, norm, kind), base)

    pred_hit = pred.clone()
    pred_hit[:, 2, -1] += 100.0  # a valid pixel of a hidden patch
    assert depth_loss(pred_hit, depth, valid, mask, p, norm, kind) > base


def test_depth_loss_value_in_metres():
    depth = torch.full((1, 1, 16, 32), 2.0)
    valid = torch.ones_like(depth, dtype=torch.bool)
    valid[..., :8, :] = False  # half of each patch invalid
    mask = torch.tensor([[True, False]])
    pred = torch.full((1, 2, 256), 2.5)
    assert depth_loss(pred, depth, valid, mask, 16, "metric", "l1").item() == pytest.approx(0.5)
    assert depth_loss(pred, depth, valid, mask, 16, "metric", "l2").item() == pytest.approx(0.25)


@pytest.mark.parametrize("objective", ["mask3d", "mae", "multimae"])
def test_objectives_train_the_encoder(objective):
    torch.manual_seed(0)
    model = MaskedRGBD(objective=objective, img_size=(64, 96), **SMALL)
    out = model(*_batch(), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out["loss"])
    assert ("loss_depth" in out) == (objective != "mae") and ("loss_rgb" in out) == (objective != "mask3d")
    out["loss"].backward()
    assert model.patch_embed.proj.weight.grad.abs().sum() > 0
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    if "depth" in model.batch_keys:
        with pytest.raises(ValueError, match="needs depth"):
            model(_batch()[0])


def _checkpoint(model):
    return {"model": model.state_dict(), "arch": model.arch(), "iteration": 7}


def test_export_carries_the_pretraining_grid_and_loads_into_detectron2_vit_with_every_key_matched():
    from detectron2.modeling.backbone.vit import SimpleFeaturePyramid

    from benchmark.backbones import GridViT

    torch.manual_seed(0)
    model = MaskedRGBD(objective="mask3d", img_size=(64, 96), **SMALL).eval()
    exported = export_state(_checkpoint(model), "test")
    sd = exported["model"]
    assert all(k.startswith(PREFIX) for k in sd)
    assert not any(s in k for k in sd for s in ("decoder", "depth", "mask_token", "modality", "head"))
    pos = sd[PREFIX + "pos_embed"]
    assert pos.shape == (1, 1 + 4 * 6, 32)  # cls slot + the 4x6 token grid of a 64x96 frame
    assert torch.equal(pos[0, 1:], model.pos_embed[0]) and not pos[0, 0].any()
    meta = exported["meta"]
    assert (meta["embed_dim"], meta["depth"], meta["num_heads"], meta["patch_size"]) == (32, 2, 2, 16)
    assert meta["img_size"] == [64, 96] and meta["pretrain_grid"] == [4, 6]
    assert meta["objective"] == "mask3d" and meta["iteration"] == 7

    net = GridViT(
        img_size=64,
        patch_size=16,
        embed_dim=32,
        depth=2,
        num_heads=2,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        use_rel_pos=True,
        window_size=2,
        window_block_indexes=[0],
        pretrain_grid=meta["pretrain_grid"],
    )
    holder = nn.Module()
    holder.backbone = SimpleFeaturePyramid(
        net, "last_feat", out_channels=16, scale_factors=(4.0, 2.0, 1.0, 0.5), norm="LN", square_pad=0
    )
    result = holder.load_state_dict(sd, strict=False)
    assert result.unexpected_keys == []
    missing_net = [k for k in result.missing_keys if k.startswith(PREFIX)]
    assert missing_net and all("rel_pos" in k for k in missing_net)


def test_encoder_init_from_mae_timm_safetensors_and_export(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = MaskedRGBD(objective="mae", img_size=(64, 96), **SMALL)
    encoder = {k: v for k, v in source.state_dict().items() if k.startswith(("patch_embed", "blocks", "norm"))}
    mae_like = {
        **encoder,
        "cls_token": torch.zeros(1, 1, 32),
        "pos_embed": torch.zeros(1, 17, 32),
        "decoder_embed.weight": torch.zeros(8, 32),
        "mask_token": torch.zeros(1, 1, 8),
    }
    torch.save({"model": mae_like, "epoch": 3}, tmp_path / "mae.pth")
    save_file({k: v.contiguous() for k, v in encoder.items()}, str(tmp_path / "timm.safetensors"))
    torch.save(export_state(_checkpoint(source), "test"), tmp_path / "export.pth")

    for name in ("mae.pth", "timm.safetensors", "export.pth"):
        target = MaskedRGBD(objective="mask3d", img_size=(64, 96), **SMALL)
        info = load_encoder_weights(target, tmp_path / name)
        assert info["loaded"] >= len([k for k in encoder if not k.startswith("norm.")])
        assert torch.equal(target.blocks[1].mlp.fc2.weight, source.blocks[1].mlp.fc2.weight)
        assert torch.equal(target.patch_embed.proj.weight, source.patch_embed.proj.weight)


def test_checkpoint_of_another_architecture_or_truncated_is_a_clear_error(tmp_path):
    other = MaskedRGBD(objective="mae", img_size=(64, 96), **{**SMALL, "embed_dim": 64})
    torch.save({"model": other.state_dict()}, tmp_path / "wide.pth")
    target = MaskedRGBD(objective="mask3d", img_size=(64, 96), **SMALL)
    with pytest.raises(ValueError, match="embed_dim=64.*embed_dim=32"):
        load_encoder_weights(target, tmp_path / "wide.pth")
    torch.save({"model": {"conv1.weight": torch.zeros(8, 3, 7, 7)}}, tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match="not a ViT checkpoint"):
        load_encoder_weights(target, tmp_path / "resnet.pth")
    data = (tmp_path / "wide.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pth.*truncated"):
        load_encoder_weights(target, tmp_path / "cut.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_encoder_weights(target, tmp_path / "missing.pth")


def _hide(depth, mask, patch_size, grid, value):
    """`depth` with every pixel of the patches `mask` hides set to `value` (still a valid reading)."""
    hidden = unpatchify(mask.float()[..., None].expand(-1, -1, patch_size**2), patch_size, grid).bool()
    return torch.where(hidden, torch.full_like(depth, value), depth)


def test_mask3d_predictions_ignore_hidden_depth_and_its_loss_is_the_depth_loss_under_the_depth_mask():
    torch.manual_seed(0)
    model = MaskedRGBD(objective="mask3d", img_size=(64, 96), depth_mask_ratio=0.5, **SMALL).eval()
    image, depth, valid = _batch()
    with torch.no_grad():
        out = model(image, depth, valid, generator=torch.Generator().manual_seed(0))
        changed_depth = _hide(depth, out["depth_mask"], 16, out["grid"], 9.0)
        changed = model(image, changed_depth, valid, generator=torch.Generator().manual_seed(0))
    assert torch.equal(changed["depth_mask"], out["depth_mask"]) and not torch.equal(changed_depth, depth)
    assert torch.allclose(changed["pred_depth"], out["pred_depth"], atol=1e-6)  # hidden depth never reaches it

    under_depth_mask = depth_loss(
        out["pred_depth"], depth, valid, out["depth_mask"], 16, model.depth_norm, model.depth_loss
    )
    under_rgb_mask = depth_loss(
        out["pred_depth"], depth, valid, out["rgb_mask"], 16, model.depth_norm, model.depth_loss
    )
    assert not torch.equal(out["rgb_mask"], out["depth_mask"])
    assert torch.allclose(out["loss"], under_depth_mask) and not torch.allclose(out["loss"], under_rgb_mask)


@pytest.mark.parametrize("norm", ["image", "patch"])
def test_depth_input_is_standardised_with_visible_valid_pixels_only(norm):
    model = MaskedRGBD(objective="mask3d", img_size=(64, 96), depth_norm=norm, **SMALL)
    _, depth, valid = _batch()
    mask = torch.zeros(2, 4 * 6, dtype=torch.bool)
    mask[:, 1::3] = True
    grid = (4, 6)
    inputs = model.depth_input(depth, valid, mask, grid)
    changed = model.depth_input(_hide(depth, mask, 16, grid, 9.0), valid, mask, grid)
    seen = _hide(valid.float(), mask, 16, grid, 0.0).bool()
    assert torch.equal(inputs[:, 1:], valid.float())  # the validity channel
    assert torch.allclose(changed[:, :1][seen], inputs[:, :1][seen], atol=1e-5)  # hidden pixels move no statistic
    visible = inputs[:, :1][seen].view(2, -1)
    assert torch.allclose(visible.mean(1), torch.zeros(2), atol=1e-4)
    assert torch.allclose(visible.std(1, correction=0), torch.ones(2), atol=1e-3)
    assert not inputs[:, :1][~valid].any()  # invalid pixels read as 0, never as a depth


def _from_config(**overrides):
    """The model as `python -m pretrain` builds it: the CPU config, small, with `overrides`."""
    from detectron2.config import instantiate

    from pretrain.train import load_config
    from tests.test_pretrain_train import CONFIG

    small = {f"model.{k}": v for k, v in SMALL.items() if k != "preset"}
    settings = {**small, "model.img_size": (64, 96), **{f"model.{k}": v for k, v in overrides.items()}}
    torch.manual_seed(0)
    return instantiate(load_config(CONFIG, [f"{k}={v}" for k, v in settings.items()]).model)


class _Outputs:
    """Records every Linear layer's output in call order; `shift` adds to one layer's output where `where`."""

    def __init__(self, model):
        self.calls, self.shift = [], None
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.calls.append((module, output.detach().clone()))
        if self.shift is not None and module is self.shift[0]:
            return output + self.shift[1]
        return None


@pytest.mark.parametrize("objective", ["mae", "multimae"])
def test_rgb_loss_is_maes_over_the_hidden_patches_only(objective):
    """Twin of the depth-loss test, through the model's forward: MAE's loss (per-patch normalised pixels,
    per-pixel MSE) averaged over the hidden RGB patches; visible-patch predictions cost nothing."""
    model = _from_config(objective=objective, rgb_mask_ratio=0.5).eval()
    image, depth, valid = _batch()
    outputs = _Outputs(model)

    def forward():
        with torch.no_grad():
            return model(image, depth, valid, generator=torch.Generator().manual_seed(0))

    out = forward()
    hidden, pred = out["rgb_mask"], out["pred_rgb"]
    assert hidden.any() and (~hidden).any()
    x = (image.float() - torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)) / torch.tensor(
        [58.395, 57.12, 57.375]
    ).view(1, 3, 1, 1)
    target = x.view(2, 3, 4, 16, 6, 16).permute(0, 2, 4, 3, 5, 1).reshape(2, 24, 16 * 16 * 3)  # row-major patches
    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    per_patch = ((pred - target) ** 2).mean(-1)
    torch.testing.assert_close(out["loss_rgb"], per_patch[hidden].mean())

    (head,) = [m for m, o in outputs.calls if o.shape == pred.shape and torch.equal(o.float(), pred)]
    outputs.shift = (head, 100.0 * (~hidden)[..., None])  # every visible patch's prediction
    torch.testing.assert_close(forward()["loss_rgb"], out["loss_rgb"])
    outputs.shift = (head, 100.0 * (hidden & (torch.arange(24) == hidden[0].nonzero()[0]))[..., None])
    assert forward()["loss_rgb"] > out["loss_rgb"] + 1  # one hidden patch


def test_pri3d_loss_is_the_symmetric_info_nce_at_temperature_0_4():
    """Hand-computed on three matches: cosine similarities of the projected tokens over T = 0.4, cross-entropy
    with each match's partner as the target, both directions averaged."""
    model = _from_config(objective="pri3d").eval()
    n = 4 * 6
    image = torch.randint(0, 256, (1, 2, 3, 64, 96), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    match = torch.full((1, n), -1)
    match[0, [0, 9, 17]] = torch.tensor([3, 10, 20])
    outputs = _Outputs(model)
    with torch.no_grad():
        out = model(image, match=match)
    projected = outputs.calls[-1][1].float()  # the projection head: the last layer of the objective
    assert projected.shape[:2] == (2, n)
    z = nn.functional.normalize(projected, dim=-1)
    logits = z[0, [0, 9, 17]] @ z[1, [3, 10, 20]].T / 0.4
    rows = -(logits.diagonal() - logits.logsumexp(1)).mean()
    cols = -(logits.diagonal() - logits.logsumexp(0)).mean()
    assert out["matches"] == 3
    torch.testing.assert_close(out["loss"], (rows + cols) / 2)


def test_detectron2_weight_init_starts_the_encoder_as_the_benchmarks_random_vit():
    torch.manual_seed(0)
    mae = MaskedRGBD(objective="mask3d", **SMALL).state_dict()
    torch.manual_seed(0)
    d2 = MaskedRGBD(objective="mask3d", weight_init="detectron2", **SMALL)
    linears = {f"blocks.{k}": m for k, m in d2.blocks.named_modules() if isinstance(m, nn.Linear)}
    assert all(abs(float(m.weight.detach().std()) - 0.02) < 0.003 and not m.bias.any() for m in linears.values())
    proj = d2.patch_embed.proj.weight.detach()
    assert proj.abs().max() <= proj[0].numel() ** -0.5  # PyTorch's conv default, as in Detectron2's ViT
    # only the encoder changes: the decoder and the learned tokens are MAE's, draw for draw
    encoder = ("blocks.", "patch_embed.")
    assert all(torch.equal(p, mae[k]) for k, p in d2.state_dict().items() if not k.startswith(encoder))
    assert not any(torch.equal(m.weight, mae[f"{k}.weight"]) for k, m in linears.items())
    assert not torch.equal(proj, mae["patch_embed.proj.weight"])
    with pytest.raises(ValueError, match="model.weight_init='timm' is not one of mae, detectron2"):
        MaskedRGBD(objective="mask3d", weight_init="timm", **SMALL)


def test_centred_positions_remove_only_the_tables_mean():
    """The table's differences between positions (what tells them apart) stay; its mean over the grid, the same
    vector in every token, goes."""
    from pretrain.metrics import token_health
    from pretrain.model import sincos_pos_embed

    table, centred = sincos_pos_embed((12, 16), 192), sincos_pos_embed((12, 16), 192, centred=True)
    assert token_health(table[None])["encoder_shared_share"] > 0.75  # the miniature's grid
    assert centred.mean(0).abs().max() < 1e-6
    torch.testing.assert_close(centred - centred[0], table - table[0], rtol=0, atol=1e-5)
    model = MaskedRGBD(objective="mask3d", centre_pos=True, **SMALL)
    assert model.arch()["centre_pos"] and model.pos_embed.mean(1).abs().max() < 1e-6
    assert model.decoder_pos_embed.mean(1).abs().max() < 1e-6
