"""Export the RGB encoder of a pre-training run for Detectron2's ViT.

    python -m pretrain.export RUN_DIR_OR_CHECKPOINT OUT.pth [--force]

Writes `{"model": {"backbone.net.<name>": tensor}, "meta": {...}}` (docs/interfaces.md). Only the patch
projection and the transformer blocks travel: the decoder, depth branch, mask token and our final norm
(Detectron2's ViT has none) stay behind. The fixed sin-cos embedding is written on the pre-training token
grid itself (`meta["pretrain_grid"]`, rows x cols, after Detectron2's cls slot), so the benchmark's
`GridViT` computes our encoder's features exactly at the pre-training resolution, whatever its aspect
ratio, and resizes from that grid at any other.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

from core.io import CheckpointError, load_torch, save_torch

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
    pos = sincos_pos_embed(grid, arch["embed_dim"])
    model[PREFIX + "pos_embed"] = torch.cat([torch.zeros(1, arch["embed_dim"]), pos])[None]  # cls slot first
    if len([k for k in model if ".attn.qkv.weight" in k]) != arch["depth"]:
        raise ValueError(f"{source}: expected {arch['depth']} blocks in the checkpoint")
    meta = {
        **arch,
        "source": source,
        "iteration": int(ckpt.get("iteration", 0)),
        "pretrain_grid": list(grid),
        "pos_embed": "sincos-2d on pretrain_grid after a zero cls slot",
    }
    return {"model": model, "meta": meta}


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain.export", description=__doc__.split("\n")[0])
    parser.add_argument("src", help="run folder (holding checkpoint.pth) or a checkpoint file")
    parser.add_argument("out", help="output .pth for the benchmark (Detectron2 ViT names under backbone.net.)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists (never the input itself)")
    args = parser.parse_args(argv)
    try:
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
