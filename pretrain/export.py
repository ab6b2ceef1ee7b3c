"""Export the RGB encoder of a pre-training run for Detectron2's ViT, or for timm (and what builds on it).

    python -m pretrain.export RUN_DIR_OR_CHECKPOINT OUT.pth [--force]
    python -m pretrain.export RUN_DIR_OR_CHECKPOINT OUT.safetensors --format timm [--force]

`--format timm` writes timm's VisionTransformer names (`patch_embed.proj`, `pos_embed` on the pre-training grid
without a class slot, `blocks.*`, our final `norm`) to a `.safetensors` file whose header keeps the meta as
JSON (`mask3d_meta`), the timm model name and its keyword arguments; the command prints the
`timm.create_model` call that loads it (`class_token=False, global_pool=""`: our encoder has no class token).

The default writes `{"model": {"backbone.net.<name>": tensor}, "meta": {...}}` (docs/interfaces.md). Only the patch
projection and the transformer blocks travel: the decoder, depth branch, mask token and our final norm
(Detectron2's ViT has none) stay behind. The fixed sin-cos embedding is written on the pre-training token
grid itself (`meta["pretrain_grid"]`, rows x cols, after Detectron2's cls slot), so the benchmark's
`GridViT` computes our encoder's features exactly at the pre-training resolution, whatever its aspect
ratio, and resizes from that grid at any other.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch
from safetensors.torch import save

from core.io import CheckpointError, load_torch, save_torch, write_bytes

from .masking import grid_size
from .model import sincos_pos_embed

CHECKPOINT_NAME = "checkpoint.pth"
PREFIX = "backbone.net."
_EXPORTED = re.compile(
    r"^(patch_embed\.proj\.(weight|bias)|blocks\.\d+\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|"
    r"mlp\.fc2)\.(weight|bias))$"
)


def find_checkpoint(src: str | Path) -> Path:
    src = Path(src)
    path = src / CHECKPOINT_NAME if src.is_dir() else src
    if not path.is_file():
        raise FileNotFoundError(
            f"no pre-training checkpoint at {path}; pass a run folder holding "
            f"{CHECKPOINT_NAME} (written by `python -m pretrain`) or the checkpoint itself"
        )
    return path


def load_checkpoint(path: Path) -> dict:
    ckpt = load_torch(path, "pre-training checkpoint")
    if not isinstance(ckpt, dict) or "model" not in ckpt or "arch" not in ckpt:
        raise ValueError(f"{path} is not a pretrain checkpoint (no 'model'/'arch' entries)")
    return ckpt


def export_state(ckpt: dict, source: str) -> dict:
    """The Detectron2-named encoder state dict and its metadata from a loaded pretrain checkpoint."""
    arch = dict(ckpt["arch"])
    model = {PREFIX + k: v.detach().clone() for k, v in ckpt["model"].items() if _EXPORTED.match(k)}
    grid = grid_size(tuple(arch["img_size"]), arch["patch_size"])
    pos = sincos_pos_embed(grid, arch["embed_dim"], arch.get("centre_pos", False))
    model[PREFIX + "pos_embed"] = torch.cat([torch.zeros(1, arch["embed_dim"]), pos])[None]  # cls slot first
    if len([k for k in model if ".attn.qkv.weight" in k]) != arch["depth"]:
        raise ValueError(f"{source}: expected {arch['depth']} blocks in the checkpoint")
    meta = {
        **arch,
        "source": source,
        "iteration": int(ckpt.get("iteration", 0)),
        "pretrain_grid": list(grid),
        "pos_embed": f"sincos-2d{' centred' if arch.get('centre_pos') else ''} on pretrain_grid after a zero cls slot",
    }
    return {"model": model, "meta": meta}


# (embed_dim, depth, num_heads) -> timm's name for that ViT; any other shape takes vit_base's with its own sizes
TIMM_NAMES = {
    (192, 12, 3): "vit_tiny_patch16_224",
    (384, 12, 6): "vit_small_patch16_224",
    (768, 12, 12): "vit_base_patch16_224",
    (1024, 24, 16): "vit_large_patch16_224",
}
TIMM_META = "mask3d_meta"  # the header key `benchmark.inits` reads the meta back from


def timm_model(meta: dict) -> tuple[str, dict]:
    """(name, keyword arguments) of the `timm.create_model` call that builds the exported encoder."""
    name = TIMM_NAMES.get((meta["embed_dim"], meta["depth"], meta["num_heads"]), "vit_base_patch16_224")
    kwargs = {k: meta[k] for k in ("embed_dim", "depth", "num_heads", "mlp_ratio", "patch_size")}
    return name, dict(kwargs, img_size=list(meta["img_size"]), class_token=False, global_pool="")


def timm_state(ckpt: dict, source: str) -> tuple[dict[str, torch.Tensor], dict]:
    """timm-named encoder tensors (final norm included, no class slot) and the header metadata."""
    exported = export_state(ckpt, source)
    meta = exported["meta"]
    state = {k[len(PREFIX) :]: v.contiguous() for k, v in exported["model"].items()}
    state["pos_embed"] = state["pos_embed"][:, 1:].contiguous()  # timm with class_token=False has no cls slot
    state.update({f"norm.{p}": ckpt["model"][f"norm.{p}"].detach().clone() for p in ("weight", "bias")})
    name, kwargs = timm_model(meta)
    header = {TIMM_META: json.dumps(meta), "timm_model": name, "timm_kwargs": json.dumps(kwargs)}
    return state, header


def timm_snippet(out: str | Path, header: dict) -> str:
    kwargs = "".join(f", {k}={v!r}" for k, v in json.loads(header["timm_kwargs"]).items())
    return (
        f'timm.create_model("{header["timm_model"]}", pretrained=True, '
        f'pretrained_cfg_overlay=dict(file="{out}"), num_classes=0{kwargs})'
    )


class OverwriteError(FileExistsError):
    """An output that would replace the input or an existing file; the message says how to proceed."""


def check_output(src: Path, out: Path, force: bool) -> None:
    """Nothing overwrites a result: the export never replaces its own input, and replaces another existing
    file only with `force`."""
    if out.exists() and out.resolve() == src.resolve():
        raise OverwriteError(f"{out} is the checkpoint being exported; choose another output path")
    if out.is_dir():
        raise OverwriteError(f"{out} is a folder; give the output file, e.g. {out / 'backbone.pth'}")
    if out.exists() and not force:
        raise OverwriteError(f"{out} already exists; pass --force to replace it, or choose another output path")


def export(src: str | Path, out: str | Path, force: bool = False) -> dict:
    path = find_checkpoint(src)
    check_output(path, Path(out), force)
    exported = export_state(load_checkpoint(path), str(path))
    save_torch(exported, out)
    return exported


def export_timm(src: str | Path, out: str | Path, force: bool = False) -> dict:
    """The encoder as a timm `.safetensors` file; returns its header metadata."""
    path, out = find_checkpoint(src), Path(out)
    check_output(path, out, force)
    if out.suffix != ".safetensors":
        raise ValueError(f"{out}: --format timm writes safetensors; name the output *.safetensors")
    state, header = timm_state(load_checkpoint(path), str(path))
    write_bytes(out, save(state, metadata=header))
    return header


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain.export", description=__doc__.split("\n")[0])
    parser.add_argument("src", help="run folder (holding checkpoint.pth) or a checkpoint file")
    parser.add_argument("out", help="output .pth for the benchmark (Detectron2 ViT names under backbone.net.)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists (never the input itself)")
    parser.add_argument(
        "--format",
        choices=("detectron2", "timm"),
        default="detectron2",
        help="detectron2: backbone.net.* for `--init mask3d:OUT` (default); timm: a .safetensors for timm.create_model",
    )
    args = parser.parse_args(argv)
    try:
        if args.format == "timm":
            header = export_timm(args.src, args.out, force=args.force)
            snippet = timm_snippet(args.out, header)
            print(f"exported the encoder in timm's names to {args.out}; load it with\n  {snippet}")
            return 0
        exported = export(args.src, args.out, force=args.force)
    except (OSError, ValueError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    m = exported["meta"]
    print(
        f"exported {len(exported['model'])} tensors ({m['backbone']} {m['objective']}, iteration "
        f"{m['iteration']}) from {m['source']} to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
