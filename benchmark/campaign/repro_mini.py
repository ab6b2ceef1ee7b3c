"""The `make repro-mini` campaign (`python -m tools.repro_mini`): its runs as job records, and the settings
of its full CPU preset and its toy one.

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

from dataclasses import dataclass
from pathlib import Path

from benchmark.campaign.jobs import CommandJob, FinetuneJob, Job, PretrainJob

TAG = "repro-mini"

PRETRAIN_CONFIG = "pretrain/configs/default_cpu.py"
FINETUNE_CONFIG = "benchmark/configs/scannet/semseg_vit_b.py"
OBJECTIVES = ("mask3d", "mae", "multimae", "pri3d")
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
        "model.decoder_dim": 128,
        "model.decoder_depth": 2,
        "model.decoder_heads": 4,
        "model.rgb_mask_ratio": 0.75,
        "model.depth_mask_ratio": 0.75,
        "train.batch_size": 16,
        "train.base_lr": 1.6e-2,  # lr 1e-3 at batch 16 (base_lr * 16 / 256)
        "train.warmup_iters": 100,
        "train.checkpoint_period": 200,
        "train.vis_period": 0,
        "train.log_period": 100,
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
        "model.decoder_dim": 32,
        "model.decoder_depth": 1,
        "model.decoder_heads": 2,
        "train.batch_size": 2,
        "train.base_lr": 0.128,
        "train.warmup_iters": 1,
        "train.checkpoint_period": 3,
        "train.vis_period": 0,
        "train.log_period": 1,
        "train.seed": 0,
    },
    finetune_iters=3,
    finetune={"dataloader.train.total_batch_size": 2, "train.log_period": 1},
)


def pretrain_overrides(preset: dict, objective: str, iters: int) -> list[str]:
    """`key=value` overrides of PRETRAIN_CONFIG for one objective; only `model.objective` differs, and `pri3d`'s
    batch, which counts view pairs, is halved so that every objective sees the same frames per step."""
    h, w = preset["image"]
    vit = preset["vit"]
    settings = {
        "model.objective": objective,
        "model.img_size": f"({h},{w})",
        "model.embed_dim": vit["embed_dim"],
        "model.depth": vit["depth"],
        "model.num_heads": vit["num_heads"],
        "model.patch_size": 16,
        "data.names": PRETRAIN_SET,
        "data.workers": 0,
        "data.pin_memory": False,
        "train.max_iter": iters,
        "train.tag": TAG,
        **preset["pretrain"],
    }
    if objective == "pri3d":
        settings["train.batch_size"] = max(1, settings["train.batch_size"] // 2)
    return [f"{k}={v}" for k, v in settings.items()]


def finetune_overrides(preset: dict, iters: int) -> list[str]:
    """`key=value` overrides of FINETUNE_CONFIG (after `--tiny`), the same for every initialisation, split
    and seed. The ViT shape is set here for `random`; a pre-trained export sets the same shape itself."""
    h, w = preset["image"]
    vit = preset["vit"]
    settings = {
        "dataloader.test.dataset.names": VAL_SET,
        "dataloader.train.mapper.augmentations.0.short_edge_length": f"[{h}]",
        "dataloader.train.mapper.augmentations.0.max_size": w,
        "dataloader.test.mapper.augmentations.0.short_edge_length": h,
        "dataloader.test.mapper.augmentations.0.max_size": w,
        "model.backbone.net.img_size": w,
        "model.backbone.net.embed_dim": vit["embed_dim"],
        "model.backbone.net.depth": vit["depth"],
        "model.backbone.net.num_heads": vit["num_heads"],
        "train.max_iter": iters,
        # minutes-long runs: an interrupted one restarts from scratch; keep only model_final.pth
        "train.checkpointer.period": 10 * iters,
        **preset["finetune"],
    }
    return [f"{k}={v}" for k, v in settings.items()]


@dataclass(frozen=True)
class Options:
    """What the command line chose; `settings()` is what the runs' results depend on."""

    preset: dict
    data_root: Path
    seeds: int
    objectives: tuple[str, ...] = OBJECTIVES
    fractions: tuple[int, ...] = tuple(TRAIN_SETS)
    pretrain_iters: int | None = None
    finetune_iters: int | None = None
    set_pretrain: tuple[str, ...] = ()
    set_finetune: tuple[str, ...] = ()

    @property
    def iters(self) -> tuple[int, int]:
        """(pre-training, fine-tuning) iterations."""
        return (
            self.pretrain_iters or self.preset["pretrain_iters"],
            self.finetune_iters or self.preset["finetune_iters"],
        )

    def settings(self) -> dict:
        p = self.preset
        return {
            "preset": p["name"],
            "data": p["data"],
            "image": list(p["image"]),
            "vit": p["vit"],
            "pretrain_iters": self.iters[0],
            "pretrain": p["pretrain"],
            "finetune_iters": self.iters[1],
            "finetune": p["finetune"],
            "set_pretrain": list(self.set_pretrain),
            "set_finetune": list(self.set_finetune),
            "data_root": str(Path(self.data_root).resolve()),
        }


def jobs(options: Options, out: Path, store: Path) -> list[Job]:
    """Data, then a pre-training per objective, then a fine-tune per (fraction, seed, init), where `init` is
    `random` or an objective (its export). Runs go to OUT/pretrain/<objective>/ and
    OUT/finetune/<init>/<pct>pct/seed<k>/; every record goes to `store` with tag `repro-mini`."""
    preset, data_root = options.preset, Path(options.data_root).resolve()
    env = {"MASK3D_DATA": str(data_root), "MASK3D_RESULTS": str(store)}
    d = preset["data"]
    raw = data_root / "synthetic_raw"
    make = CommandJob(
        name="data: generate scenes",
        stage="data",
        module="tools.make_synthetic",
        env=env,
        args=(
            "--out",
            str(raw),
            "--scenes",
            str(d["scenes"]),
            "--frames-per-scene",
            str(d["frames_per_scene"]),
            "--seed",
            str(d["seed"]),
            "--height",
            str(d["height"]),
            "--width",
            str(d["width"]),
            "--skip-existing",
        ),
    )
    prepare = CommandJob(
        name="data: prepare",
        stage="data",
        module="tools.prepare_scannet",
        env=env,
        needs=(make.name,),
        args=("--raw", str(raw), "--out", str(data_root / "synthetic"), "--frame-skip", "1"),
    )
    pretrain_iters, finetune_iters = options.iters
    pretrains = {
        objective: PretrainJob(
            name=f"pretrain {objective}",
            config=PRETRAIN_CONFIG,
            out_dir=out / "pretrain" / objective,
            env=env,
            needs=(prepare.name,),
            overrides=(*pretrain_overrides(preset, objective, pretrain_iters), *options.set_pretrain),
        )
        for objective in options.objectives
    }
    finetunes = []
    for fraction in options.fractions:
        for seed in range(options.seeds):
            for init in ("random", *options.objectives):
                finetunes.append(
                    FinetuneJob(
                        name=f"finetune {init} {fraction}% seed{seed}",
                        config=FINETUNE_CONFIG,
                        tiny=True,
                        out_dir=out / "finetune" / init / f"{fraction}pct" / f"seed{seed}",
                        pretrain=pretrains.get(init),
                        train_set=TRAIN_SETS[fraction],
                        seed=seed,
                        tag=TAG,
                        env=env,
                        needs=(prepare.name,),
                        store=store,
                        labels={"init": init} | ({"objective": init} if init != "random" else {}),
                        overrides=(*finetune_overrides(preset, finetune_iters), *options.set_finetune),
                    )
                )
    # multimae costs about twice as much per iteration: start it first so that two slots end together
    order = sorted(pretrains.values(), key=lambda job: job.name != "pretrain multimae")
    return [make, prepare, *order, *finetunes]
