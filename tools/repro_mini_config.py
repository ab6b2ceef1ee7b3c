"""Settings of `make repro-mini` (`python -m tools.repro_mini`): the full CPU preset and the toy one.

Every number is our choice, sized so 3 pre-trainings + 24 fine-tunes fit in 45 minutes on 2 CPU cores.
Costs measured with one thread per run and two runs side by side (what the driver does on 2 cores):

- Data: `make data-synthetic` (24 scenes x 40 frames at 240x320: 760 train frames from 19 scenes, 200 val
  frames from 5 scenes; the 20 % split keeps 4 train scenes, 160 frames): about 80 s once, then reused.
- Image size 96x128 (6x8 patches of 16 px, the frames' 3:4 aspect; the benchmark's `--tiny` size) for
  pre-training *and* fine-tuning, so object scales match. A fine-tuning step (batch 8) costs 0.22 s here
  against 0.64 s at 144x192; a first plan at 144x192 could afford only 150 fine-tuning iterations, which
  left every initialisation at mIoU 9-11 (wall and floor only), too short to tell inits apart.
- Encoder: ViT-Ti width (192, 3 heads, MLP 4x, patch 16) with 6 blocks instead of 12: half the cost.
  The benchmark records it as `vit_e192d6`.
- Pre-training: MAE's light decoder shrunk to 2 blocks x 128, mask ratio 0.75 for RGB and depth, batch
  16, 2000 iterations (42 epochs of the 760 frames), AdamW lr 1e-3 with 5 % warm-up and cosine decay;
  the same iterations, batch, data and seed for every objective. About 5 min each for mask3d and mae,
  ~8 min for multimae (its encoder also reads the visible depth tokens).
- Fine-tuning: the benchmark's ScanNet ViT semantic-segmentation config with `--tiny` (ViTDet ViT + simple
  feature pyramid + Panoptic-FPN head, 32 channels, AdamW lr 1e-3, layer decay 0.65, poly schedule) at
  96x128, batch 8, 400 iterations (4 epochs of the full split, 20 of the 20 % split) for every init and
  split, then evaluation on all 200 validation frames: about 90 s per run.
"""
from __future__ import annotations

PRETRAIN_CONFIG = "pretrain/configs/default_cpu.py"
FINETUNE_CONFIG = "benchmark/configs/scannet/semseg_vit_b.py"
OBJECTIVES = ("mask3d", "mae", "multimae")
INITS = ("random",) + OBJECTIVES
# % of training scenes -> registered training set (datasets/builtin.py)
TRAIN_SETS = {100: "synthetic_sem_seg_train", 20: "synthetic_sem_seg_train_20pct"}
PRETRAIN_SET = "synthetic_rgbd_train"
VAL_SET = "synthetic_sem_seg_val"

FULL = dict(
    name="full",
    # exactly `make data-synthetic`
    data=dict(scenes=24, frames_per_scene=40, seed=0, height=240, width=320),
    image=(96, 128),
    vit=dict(embed_dim=192, depth=6, num_heads=3),
    seeds=3,
    pretrain_iters=2000,
    pretrain={
        "model.decoder_dim": 128, "model.decoder_depth": 2, "model.decoder_heads": 4,
        "model.rgb_mask_ratio": 0.75, "model.depth_mask_ratio": 0.75,
        "train.batch_size": 16, "train.base_lr": 1.6e-2,  # lr 1e-3 at batch 16 (base_lr * 16 / 256)
        "train.warmup_iters": 100, "train.checkpoint_period": 200, "train.vis_period": 0, "train.log_period": 100,
        "train.seed": 0,
    },
    finetune_iters=400,
    finetune={"dataloader.train.total_batch_size": 8, "train.log_period": 20},
)

# A pipeline check in about a minute: the tree of tests/conftest.py (4 scenes x 4 frames at 96x128) and
# models so small that they learn nothing. Its numbers mean nothing.
TOY = dict(
    name="toy",
    data=dict(scenes=4, frames_per_scene=4, seed=0, height=96, width=128),
    image=(96, 128),
    vit=dict(embed_dim=32, depth=2, num_heads=2),
    seeds=1,
    pretrain_iters=3,
    pretrain={
        "model.decoder_dim": 32, "model.decoder_depth": 1, "model.decoder_heads": 2,
        "train.batch_size": 2, "train.base_lr": 0.128, "train.warmup_iters": 1, "train.checkpoint_period": 3,
        "train.vis_period": 0, "train.log_period": 1, "train.seed": 0,
    },
    finetune_iters=3,
    finetune={"dataloader.train.total_batch_size": 2, "train.log_period": 1},
)

PRESETS = {"full": FULL, "toy": TOY}


def pretrain_overrides(preset: dict, objective: str, output_dir: str, iters: int | None = None) -> list[str]:
    """`key=value` overrides of PRETRAIN_CONFIG for one objective; only `model.objective` differs."""
    h, w = preset["image"]
    vit = preset["vit"]
    settings = {
        "model.objective": objective, "model.img_size": f"({h},{w})", "model.embed_dim": vit["embed_dim"],
        "model.depth": vit["depth"], "model.num_heads": vit["num_heads"], "model.patch_size": 16,
        "data.names": PRETRAIN_SET, "data.workers": 0, "data.pin_memory": False,
        "train.max_iter": iters or preset["pretrain_iters"], "train.tag": "repro-mini",
        "train.output_dir": output_dir, **preset["pretrain"],
    }
    return [f"{k}={v}" for k, v in settings.items()]


def finetune_overrides(preset: dict, fraction: int, seed: int, output_dir: str, iters: int | None = None) -> list[str]:
    """`key=value` overrides of FINETUNE_CONFIG (after `--tiny`); the same for every initialisation. The
    ViT shape is set here for `random`; a pre-trained export sets the same shape from its metadata."""
    h, w = preset["image"]
    vit = preset["vit"]
    iters = iters or preset["finetune_iters"]
    settings = {
        "dataloader.train.dataset.names": TRAIN_SETS[fraction], "dataloader.test.dataset.names": VAL_SET,
        "dataloader.train.mapper.augmentations.0.short_edge_length": f"[{h}]",
        "dataloader.train.mapper.augmentations.0.max_size": w,
        "dataloader.test.mapper.augmentations.0.short_edge_length": h,
        "dataloader.test.mapper.augmentations.0.max_size": w,
        "model.backbone.net.img_size": w,
        "model.backbone.net.embed_dim": vit["embed_dim"], "model.backbone.net.depth": vit["depth"],
        "model.backbone.net.num_heads": vit["num_heads"],
        "train.max_iter": iters, "train.seed": seed,
        # minutes-long runs: an interrupted one restarts from scratch; keep only model_final.pth
        "train.checkpointer.period": 10 * iters,
        "train.output_dir": output_dir, **preset["finetune"],
    }
    return [f"{k}={v}" for k, v in settings.items()]
