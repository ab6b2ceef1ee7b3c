"""Initialisations: a registry of converters from checkpoint files to the benchmark's backbone names.

A spec is `random`, `KIND:PATH` or a baseline name from `results/baselines.yaml` (which maps the name to
a `KIND:PATH`). Kinds:

- `mask3d:PATH`  our export (`python -m pretrain.export`, docs/interfaces.md): Detectron2 ViT names under
                 `backbone.net.` plus `meta`, from which the fine-tuning ViT's shape is rebuilt;
- `mae:PATH`, `timm:PATH`, `supervised:PATH`  ViTs in timm naming (MAE's `.pth` with a `model` key, DeiT
                 with or without its distillation token, DINO, timm state dicts, `.safetensors` including
                 ours from `pretrain.export --format timm`); torchvision, timm or MoCo ResNets for R50 configs;
- `multimae:PATH`  MultiMAE's RGB input adapter and encoder;
- `pri3d:PATH`   Pri3D's ResNet-50 (`backbone.encoder.*`, torchvision layout) to Detectron2's R50 names;
- `d2:PATH`      a Detectron2 checkpoint of a whole model (e.g. one of our fine-tuned runs).

Whatever the kind, the backbone is built in the checkpoint's own shape (`benchmark.architecture` reads it
from the converted tensors). Files are read with `core.io.load_weights` (safetensors, or
`torch.load(weights_only=True)`). Keys a format
is known to carry for other purposes (classifier heads, decoders, other modalities) are dropped by name;
anything else that has no place in the model is an error, and so is a missing backbone key, except
ViTDet's zero-initialised `rel_pos_*` tables and BatchNorm counters, unless `allow_missing` is set.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from detectron2.modeling.backbone.resnet import ResNet
from detectron2.modeling.backbone.vit import ViT
from safetensors import safe_open
from timm.layers import resample_abs_pos_embed

from benchmark import architecture as arch
from core.io import CheckpointError, load_weights
from pretrain.export import TIMM_META  # the header key of our timm-format export's meta
from results.baselines import BaselineError, load_baselines, registry_path

logger = logging.getLogger(__name__)

MASK3D_PREFIX = "backbone.net."
MASK3D_META = ("embed_dim", "depth", "num_heads", "mlp_ratio", "patch_size")
# timm/MAE ViT entries Detectron2's ViT has no use for: class token, final norm, classifier, MAE decoder.
TIMM_VIT_DROP = re.compile(
    r"^(cls_token|mask_token|dist_token|norm\.|fc_norm\.|head\.|head_dist\.|pre_logits\.|"
    r"decoder_|decoder\.)"
)
# MoCo v1/v2 (`encoder_q.`) and v3 (`base_encoder.`) keep the query encoder; the rest is the momentum twin,
# the queue and the predictor.
MOCO_ENCODERS = ("encoder_q.", "base_encoder.")
MULTIMAE_DROP = re.compile(r"^(global_tokens|output_adapters\.|input_adapters\.(?!rgb\.)|mask_token)")
OPTIONAL = re.compile(r"(^|\.)(rel_pos_h|rel_pos_w|num_batches_tracked)$")


class InitError(ValueError):
    """A checkpoint that cannot initialise the model; the message names the file and the fix."""


@dataclass(frozen=True)
class InitSpec:
    kind: str
    path: Path | None = None
    label: str = ""  # what the results store records as `init`
    baseline_backbone: str | None = None


@dataclass
class Converted:
    """A checkpoint in the model's naming. `target` says where `state` keys live: inside the `vit` or
    `resnet` backbone module, or at the top of the `model` (Detectron2 checkpoints)."""

    spec: InitSpec
    target: str
    state: dict[str, torch.Tensor]
    meta: dict = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


CONVERTERS: dict[str, Callable[[object, InitSpec], Converted]] = {}


def converter(kind: str):
    def register(fn):
        CONVERTERS[kind] = fn
        return fn

    return register


# --- specs ---------------------------------------------------------------------------------------------
def parse(spec: str, baselines: Path | None = None) -> InitSpec:
    """`random`, `KIND:PATH`, or a baseline name resolved through `results/baselines.yaml` (or
    `$MASK3D_BASELINES`)."""
    spec, baselines = spec.strip(), Path(baselines or registry_path())
    if spec == "random":
        return InitSpec("random", label="random")
    if ":" in spec:
        kind, path = spec.split(":", 1)
        if kind not in CONVERTERS:
            raise InitError(f"unknown init kind {kind!r} in {spec!r}; known: random, {', '.join(sorted(CONVERTERS))}")
        if not path:
            raise InitError(f"init {spec!r} names no file; write {kind}:PATH")
        return InitSpec(kind, Path(path), label=kind)
    baseline = _baseline(spec, Path(baselines))
    if baseline.init != "random" and ":" not in baseline.init:  # no baseline of baselines (nor a loop)
        raise InitError(f"baseline {spec!r} at {baseline.where}: init {baseline.init!r} must be 'random' or KIND:PATH")
    inner = parse(baseline.init, baselines)  # paths are relative to the repository root, like INIT=
    return InitSpec(inner.kind, inner.path, label=spec, baseline_backbone=baseline.backbone)


def _baseline(name: str, baselines: Path):
    if not baselines.is_file():
        raise InitError(
            f"init {name!r} is neither 'random' nor KIND:PATH, and there is no baseline registry "
            f"{baselines} to look it up in"
        )
    try:
        registry = load_baselines(baselines)
    except BaselineError as e:
        raise InitError(str(e)) from None
    if name not in registry:
        raise InitError(
            f"init {name!r} is neither 'random', KIND:PATH nor a baseline in {baselines} (known: {', '.join(registry)})"
        )
    return registry[name]


# --- reading -------------------------------------------------------------------------------------------
def require_file(spec: InitSpec) -> None:
    if spec.kind != "random" and not (spec.path and spec.path.exists()):  # a folder: load_weights says so
        hint = (
            "run `make pretrain` (or `python -m pretrain.export RUN OUT.pth`)"
            if spec.kind == "mask3d"
            else "download it (see the `note` of its entry in results/baselines.yaml) or fix the path"
        )
        raise InitError(f"init file {spec.path} ({spec.label}) does not exist: {hint}")


def read_file(spec: InitSpec):
    """The file's raw content; a missing, truncated or non-weights file is an InitError naming it."""
    require_file(spec)
    try:
        return load_weights(spec.path, f"{spec.kind} checkpoint")
    except CheckpointError as e:
        raise InitError(str(e)) from None


def tensors(raw, spec: InitSpec, wrappers=("model", "state_dict", "module")) -> dict[str, torch.Tensor]:
    """The state dict inside common wrappers (`{"model": ...}`, `{"state_dict": ...}`), `module.` stripped."""
    sd = raw
    while isinstance(sd, dict):
        inner = next((sd[w] for w in wrappers if isinstance(sd.get(w), dict)), None)
        if inner is None:
            break
        sd = inner
    if not isinstance(sd, dict) or not sd:
        raise InitError(f"{spec.path}: no state dict found (looked under {list(wrappers)})")
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise InitError(f"{spec.path}: entries {bad[:5]} are not tensors; not a {spec.kind} state dict")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return dict(sd)


def _drop(sd: dict[str, torch.Tensor], pattern: re.Pattern):
    kept = {k: v for k, v in sd.items() if not pattern.search(k)}
    return kept, sorted(set(sd) - set(kept))


def _with_cls_slot(pos_embed: torch.Tensor, spec: InitSpec, grid=None, prefix_tokens: int = 1) -> torch.Tensor:
    """Detectron2's ViT stores position embeddings as a cls slot plus the token grid (`grid`, else a square);
    extra prefix slots (DeiT's distillation token) are dropped."""
    n = pos_embed.shape[1]
    cells = math.prod(grid) if grid else None
    if n - prefix_tokens == cells or (cells is None and math.isqrt(n - prefix_tokens) ** 2 == n - prefix_tokens):
        return torch.cat([pos_embed[:, :1], pos_embed[:, prefix_tokens:]], dim=1)
    if n == cells or (cells is None and math.isqrt(n) ** 2 == n):
        return torch.cat([pos_embed.new_zeros(1, 1, pos_embed.shape[2]), pos_embed], dim=1)
    raise InitError(f"{spec.path}: pos_embed has {n} tokens, neither a square grid nor a cls token plus one")


def _file_meta(spec: InitSpec) -> dict:
    """The meta our timm-format export keeps in its .safetensors header (empty for any other file)."""
    if spec.path.suffix != ".safetensors":
        return {}
    with safe_open(str(spec.path), framework="pt") as f:
        return json.loads((f.metadata() or {}).get(TIMM_META, "{}"))


# --- converters ----------------------------------------------------------------------------------------
@converter("mask3d")
def _mask3d(raw, spec: InitSpec) -> Converted:
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict) or not isinstance(raw.get("meta"), dict):
        raise InitError(
            f"{spec.path} is not a Mask3D export (expected {{'model', 'meta'}}); write one with "
            f"`python -m pretrain.export RUN_DIR {spec.path}`"
        )
    meta = raw["meta"]
    missing_meta = [k for k in MASK3D_META if k not in meta]
    if missing_meta:
        raise InitError(
            f"{spec.path}: export meta lacks {missing_meta}; export it again with `python -m pretrain.export`"
        )
    sd = tensors({"model": raw["model"]}, spec)
    foreign = [k for k in sd if not k.startswith(MASK3D_PREFIX)]
    if foreign:
        raise InitError(f"{spec.path}: keys {foreign[:5]} are not under {MASK3D_PREFIX!r}; not a Mask3D export")
    state = {k[len(MASK3D_PREFIX) :]: v for k, v in sd.items()}  # pos_embed: cls slot + meta's pretrain_grid
    return Converted(spec, "vit", state, meta=dict(meta))


def _timm_vit(sd: dict[str, torch.Tensor], spec: InitSpec) -> Converted:
    meta = _file_meta(spec)
    state, dropped = _drop(sd, TIMM_VIT_DROP)
    if "pos_embed" in state:
        prefix = 1 + ("dist_token" in sd)
        state["pos_embed"] = _with_cls_slot(state["pos_embed"], spec, meta.get("pretrain_grid"), prefix)
    return Converted(spec, "vit", state, meta=meta, dropped=dropped)


def _torchvision_resnet(sd: dict[str, torch.Tensor], spec: InitSpec) -> Converted:
    """torchvision/timm ResNet names (conv1, bn1, layerX.Y.{convZ,bnZ,downsample.0/1}) -> Detectron2's."""
    state, dropped = {}, []
    for key, value in sd.items():
        new = re.sub(r"^conv1\.", "stem.conv1.", key)
        new = re.sub(r"^bn1\.", "stem.conv1.norm.", new)
        new = re.sub(r"^layer(\d)\.", lambda m: f"res{int(m.group(1)) + 1}.", new)
        new = re.sub(r"\.bn(\d)\.", r".conv\1.norm.", new)
        new = new.replace(".downsample.0.", ".shortcut.").replace(".downsample.1.", ".shortcut.norm.")
        if new.startswith("fc."):
            dropped.append(key)
        else:
            state[new] = value
    return Converted(spec, "resnet", state, dropped=dropped)


def _looks_like_resnet(sd) -> bool:
    return "conv1.weight" in sd and any(k.startswith("layer1.") for k in sd)


def _query_encoder(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A MoCo checkpoint's query encoder (prefix stripped) and the names of everything else."""
    prefix = next((p for p in MOCO_ENCODERS if any(k.startswith(p) for k in sd)), None)
    if prefix is None:
        return sd, []
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}, sorted(
        k for k in sd if not k.startswith(prefix)
    )


def _imagenet(raw, spec: InitSpec) -> Converted:
    sd, others = _query_encoder(tensors(raw, spec))
    converted = _torchvision_resnet(sd, spec) if _looks_like_resnet(sd) else _timm_vit(sd, spec)
    converted.dropped += others
    return converted


for _kind in ("mae", "timm", "supervised"):
    converter(_kind)(_imagenet)


@converter("multimae")
def _multimae(raw, spec: InitSpec) -> Converted:
    sd, dropped = _drop(tensors(raw, spec), MULTIMAE_DROP)
    state = {}
    meta = {}
    for key, value in sd.items():
        if key == "input_adapters.rgb.pos_emb":  # (1, C, h, w) -> (1, h*w, C)
            meta["pretrain_grid"] = list(value.shape[2:])
            state["pos_embed"] = _with_cls_slot(value.flatten(2).transpose(1, 2), spec, meta["pretrain_grid"])
        elif key.startswith("input_adapters.rgb.proj."):
            state["patch_embed.proj." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("encoder."):
            state["blocks." + key[len("encoder.") :]] = value
        else:
            state[key] = value  # unknown: reported as unexpected
    return Converted(spec, "vit", state, meta=meta, dropped=dropped)


@converter("pri3d")
def _pri3d(raw, spec: InitSpec) -> Converted:
    sd = tensors(raw, spec)
    prefix = "backbone.encoder."
    encoder = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
    if not encoder:
        raise InitError(f"{spec.path}: no {prefix}* keys; not a Pri3D checkpoint (its ResNet lives there)")
    converted = _torchvision_resnet(encoder, spec)
    converted.dropped += sorted(k for k in sd if not k.startswith(prefix))  # Pri3D's decoder and heads
    return converted


@converter("d2")
def _d2(raw, spec: InitSpec) -> Converted:
    return Converted(spec, "model", tensors(raw, spec, wrappers=("model",)))


# --- loading -------------------------------------------------------------------------------------------
def convert(spec: InitSpec) -> Converted | None:
    """Read and convert once (ViT-B checkpoints are large); None for `random`."""
    if spec.kind == "random":
        return None
    return CONVERTERS[spec.kind](read_file(spec), spec)


def architecture(converted: Converted | None) -> arch.ViTShape | arch.ResNetShape | None:
    """The backbone shape the checkpoint holds (`benchmark.architecture`); None for `random`."""
    if converted is None:
        return None
    return arch.read(converted.state, converted.meta, str(converted.spec.path))


def resize_pos_embed(pos_embed: torch.Tensor, vit: torch.nn.Module, num_tokens: int) -> torch.Tensor:
    """A checkpoint's (1, 1 + g*g, C) table resized to the model's pre-training grid (`num_tokens` with or
    without its cls slot)."""
    side, old = math.isqrt(num_tokens), math.isqrt(pos_embed.shape[1] - 1)
    if old * old != pos_embed.shape[1] - 1:
        raise InitError(
            f"pos_embed of {pos_embed.shape[1]} tokens is not a cls slot plus a square grid, so its "
            f"grid is unknown; set model.backbone.net.pretrain_grid=[rows,cols] to the grid it holds"
        )
    grid = getattr(vit, "pretrain_grid", None) or (side, side)
    has_cls = num_tokens == 1 + math.prod(grid)
    pos = pos_embed if has_cls else pos_embed[:, 1:]
    return resample_abs_pos_embed(pos, list(grid), num_prefix_tokens=int(has_cls))


def _module_prefix(model: torch.nn.Module, cls) -> str | None:
    return next((name + "." for name, m in model.named_modules() if isinstance(m, cls)), None)


def load(model: torch.nn.Module, converted: Converted | None, allow_missing: bool = False) -> dict:
    """Load converted weights into `model`; returns a summary. Raises InitError on anything unexpected."""
    if converted is None:
        return {"init": "random", "loaded": 0}
    spec = converted.spec
    if converted.target == "model":
        prefix, backbone = "", "backbone."
    else:
        cls = ViT if converted.target == "vit" else ResNet
        prefix = _module_prefix(model, cls)
        if prefix is None:
            other = "an r50" if converted.target == "resnet" else "a vit_*"
            raise InitError(
                f"{spec.path} holds a {converted.target} backbone but the model has none; use {other} config"
            )
        backbone = prefix
    own = model.state_dict()
    state = {prefix + k: v for k, v in converted.state.items()}
    resized = []
    for key in [k for k in state if k.endswith("pos_embed") and k in own]:
        if state[key].shape != own[key].shape:
            vit = model.get_submodule(key[: -len(".pos_embed")]) if "." in key else model
            state[key] = resize_pos_embed(state[key], vit, own[key].shape[1])
            resized.append(key)
    state = {k: v for k, v in state.items() if k in own or not k.endswith("num_batches_tracked")}

    unexpected = sorted(k for k in state if k not in own)
    if unexpected:
        raise InitError(
            f"{spec.path}: {len(unexpected)} entries have no place in the model, e.g. {unexpected[:5]}; "
            f"is it really a {spec.kind!r} checkpoint for this config's backbone?"
        )
    mismatched = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in state if state[k].shape != own[k].shape]
    skipped = [m for m in mismatched if not m[0].startswith(backbone)]
    if len(skipped) < len(mismatched):
        k, theirs, ours = next(m for m in mismatched if m[0].startswith(backbone))
        raise InitError(
            f"{spec.path}: {k} is {theirs} in the checkpoint but {ours} in the model; the config's "
            f"backbone differs from the checkpoint's (e.g. ViT-B vs ViT-S, patch size)"
        )
    for k, theirs, ours in skipped:  # e.g. a classifier for another number of classes
        logger.warning(f"init: skipping {k}: {theirs} in {spec.path}, {ours} in the model")
        del state[k]
    missing = sorted(k for k in own if k.startswith(backbone) and k not in state and not OPTIONAL.search(k))
    if missing and not allow_missing:
        raise InitError(
            f"{spec.path}: {len(missing)} backbone entries are missing, e.g. {missing[:5]}; pass "
            f"--allow-missing-init to train them from scratch"
        )
    model.load_state_dict(state, strict=False)
    summary = {
        "init": spec.label,
        "file": str(spec.path),
        "loaded": len(state),
        "missing": missing,
        "dropped": converted.dropped,
        "resized": resized,
    }
    logger.info(
        f"init {spec.label} from {spec.path}: {len(state)} tensors loaded, {len(converted.dropped)} "
        f"dropped by name, {len(missing)} missing, position embeddings resized: {resized or 'no'}"
    )
    return summary
