"""The `make repro-mini` campaign and its mask-ratio ablation (`python -m tools.repro_mini [--ablation]`): their
runs as job records, and the settings of their full CPU preset and a toy one.

The question: does masked-depth pre-training (mask3d) give a better ViT than RGB-only MAE and than no
pre-training, in the paper's regime of much unlabelled RGB-D data and few labels? A first campaign (tag
`repro-mini`, its records kept in results/runs/repro_mini.jsonl) compared two initialisations rather than
pre-training, had no positive control, and pre-trained on the very scenes it fine-tuned on. This one (tag
`repro-mini-2`) is built so that it could see a benefit if there were one:

1. Matched baseline: `none` exports the pre-training model's own initialisation through the same path as every
   pre-trained encoder; `random` (Detectron2's ViT init) stays beside it, and the report says why they differ.
2. Positive control: `supervised` pre-trains the same ViT with semantic labels on separate labelled scenes
   (`synthetic_control`, generator seed 2, never in val); if it does not beat `none` with a 95 % interval above
   zero, the report says the miniature cannot detect a pre-training benefit.
3. More unlabelled than labelled data: self-supervised objectives pre-train on `synthetic_pool` (generator seed
   1, 96 scenes of 16 frames, 77 of them in its train split: over 4x the 19 labelled training scenes);
   fine-tuning runs at 100 % and 20 % of the labelled scenes.
4. Pre-training length by evidence: mask3d and mae are pre-trained and probed at three lengths; the fine-tunes
   use the longest.
5. Recipes chosen robustly: each init's lr x layer-decay grid on held-out training scenes has 2 fine-tuning
   seeds per cell, the cell chosen by its mean (`FinetuneJob.recipe`).
6. Encoder health (output rms, shared-component energy) is in every pre-training record; `remedy` (when the
   preset names one) pre-trains mask3d once more with that change, probed and fine-tuned with mask3d's recipe.

Sizes (FULL; one thread a run): ViT-Ti width, 6 blocks, patch 8 at 96x128. Step times measured idle were 25-30 %
shorter than with both slots busy (mask3d 0.37 s a step idle, 0.47 s busy), so the preset is sized by busy
times. Pre-training batch 16: 500 + 1000 + 2000 iterations for mask3d and for mae, 2000 for the remedy, 1000 for
supervised (0.94 s a step idle: it encodes every token, mask3d a quarter): ~95 slot-minutes. Fine-tuning batch 8
at ~0.6 s a step plus ~25 s to start and evaluate: grid 5 inits x 4 cells x 2 seeds x 100 iterations (~58
slot-minutes), main 6 inits x 2 fractions x 3 seeds x 300 iterations (~127), probes and data ~15. About 295
CPU-slot minutes, ~2.45 hours on 2 cores, estimated; measured: 1 h 34 min from an empty store (one restart
included; steps ran faster than these busy-machine times: mask3d 0.3 s, supervised 0.66 s).
Fine-tuning is shorter than the first campaign's 1200 iterations (600 was not converged there) to fit the
budget; short fine-tuning is where a pre-training benefit shows most.
The ablation varies mask3d's RGB and depth mask ratios one at a time around 0.75/0.75 (0.5, 0.9), 2 seeds each,
with probes only (on the seed-0 scenes, as when its records were made): about 30 minutes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from benchmark.campaign.jobs import CommandJob, FinetuneJob, Job, PretrainJob, ProbeJob, needed_exports
from datasets.builtin import EXTRA_SYNTHETIC

TAG = "repro-mini-2"
ABLATION_TAG = "repro-mini-ablation"

PRETRAIN_CONFIG = "pretrain/configs/default_cpu.py"
FINETUNE_CONFIG = "benchmark/configs/scannet/semseg_vit_b.py"
OBJECTIVES = ("mask3d", "mae", "multimae", "pri3d")
DEFAULT_OBJECTIVES = ("mask3d", "mae")
BASELINES = ("random", "none", "supervised")  # the inits every campaign fine-tunes beside its objectives
# % of training scenes -> registered training set (datasets/builtin.py)
TRAIN_SETS = {100: "synthetic_sem_seg_train", 20: "synthetic_sem_seg_train_20pct"}
FIT_SET, HOLDOUT_SET = "synthetic_sem_seg_train_fit", "synthetic_sem_seg_train_holdout"
PRETRAIN_SET = "synthetic_rgbd_train"  # the ablation's pre-training data (the labelled scenes themselves)
POOL_SET = "synthetic_pool_rgbd_train"  # unlabelled pre-training scenes, disjoint from every labelled one
CONTROL_SET = "synthetic_control_sem_seg_train"  # the positive control's labelled scenes
VAL_SET = "synthetic_sem_seg_val"
# (RGB, depth) mask ratios of the ablation: each varied alone around the main campaign's 0.75 / 0.75
ABLATION_RATIOS = ((0.75, 0.75), (0.5, 0.75), (0.9, 0.75), (0.75, 0.5), (0.75, 0.9))
# data-root folder -> preset key of its generator settings
TREES = {"synthetic": "data", "synthetic_pool": "pool", "synthetic_control": "control"}


def _extra_tree(folder: str) -> dict:
    """`make data-synthetic-extra`'s generator settings of a tree (datasets.builtin.EXTRA_SYNTHETIC)."""
    seed, scenes, frames = EXTRA_SYNTHETIC[folder]
    return dict(scenes=scenes, frames_per_scene=frames, seed=seed, height=240, width=320)


FULL = dict(
    name="full",
    # exactly `make data-synthetic`, then the two extra trees of `make data-synthetic-extra`
    data=dict(scenes=24, frames_per_scene=40, seed=0, height=240, width=320),
    **{key: _extra_tree(folder) for folder, key in TREES.items() if key != "data"},
    image=(96, 128),
    vit=dict(embed_dim=192, depth=6, num_heads=3, patch_size=8),
    pretrain_lengths=(500, 1000, 2000),  # mask3d and mae are probed at each; everything else uses the longest
    pretrain={
        "model.decoder_dim": 128,
        "model.decoder_depth": 2,
        "model.decoder_heads": 4,
        "model.rgb_mask_ratio": 0.75,
        "model.depth_mask_ratio": 0.75,
        "train.batch_size": 16,
        "train.base_lr": 1.6e-2,  # lr 1e-3 at batch 16 (base_lr * 16 / 256)
        "train.warmup_iters": 50,
        "train.checkpoint_period": 200,
        "train.vis_period": 0,
        "train.log_period": 100,
    },
    # mask3d once more with a remedy for the shared component: in a 300-iteration pilot (one seed) centred sin-cos
    # positions with Detectron2's weight init took the share from 98.8 % to 86.3 % and the loss from 0.366 to 0.312
    remedy=dict(name="mask3d_centred_d2init", overrides=("model.centre_pos=True", "model.weight_init=detectron2")),
    ablation=dict(pretrain_seeds=2, pretrain_iters=1000),  # as its committed records were made
    control_iters=1000,  # the supervised control (0.94 s a step: it encodes every token)
    seeds=3,
    finetune_iters=300,
    grid_iters=100,
    grid_seeds=2,
    eval_points=4,  # periodic evaluations of a curve run (the last is the final one)
    grid=dict(lr=(1e-3, 3e-3), layer_decay=(0.65, 1.0)),
    finetune={"dataloader.train.total_batch_size": 8, "train.log_period": 20},
)

# A pipeline check in about two minutes: trees of 4 scenes x 4 frames at 96x128 and models so small that they
# learn nothing. Its numbers mean nothing.
TOY = dict(
    name="toy",
    data=dict(scenes=4, frames_per_scene=4, seed=0, height=96, width=128),
    pool=dict(scenes=4, frames_per_scene=4, seed=1, height=96, width=128),
    control=dict(scenes=4, frames_per_scene=4, seed=2, height=96, width=128),
    image=(96, 128),
    vit=dict(embed_dim=32, depth=2, num_heads=2, patch_size=16),
    pretrain_lengths=(2, 3),
    pretrain={
        "model.decoder_dim": 32,
        "model.decoder_depth": 1,
        "model.decoder_heads": 2,
        "model.rgb_mask_ratio": 0.75,
        "model.depth_mask_ratio": 0.75,
        "train.batch_size": 2,
        "train.base_lr": 0.128,
        "train.warmup_iters": 1,
        "train.checkpoint_period": 3,
        "train.vis_period": 0,
        "train.log_period": 1,
    },
    remedy=dict(name="mask3d_centred_d2init", overrides=("model.centre_pos=True", "model.weight_init=detectron2")),
    ablation=dict(pretrain_seeds=1, pretrain_iters=3),
    control_iters=3,
    seeds=1,
    finetune_iters=4,
    grid_iters=2,
    grid_seeds=2,
    eval_points=2,
    grid=dict(lr=(1e-3,), layer_decay=(1.0,)),  # one cell, two seeds: the mean decides, as in FULL
    finetune={"dataloader.train.total_batch_size": 2, "train.log_period": 1},
)


def pretrain_overrides(
    preset: dict, objective: str, iters: int, seed: int, ratios=None, data: str = PRETRAIN_SET
) -> list[str]:
    """`key=value` overrides of PRETRAIN_CONFIG for one objective and seed; only `model.objective` (and the data a
    supervised objective needs) differs between objectives, and the batch of an objective whose samples hold
    several frames (`pri3d`'s view pairs) is divided by their number, so that every objective sees the same
    frames per step. `ratios` (RGB, depth) replaces the preset's mask ratios."""
    from pretrain.model import objective_class

    h, w = preset["image"]
    vit = preset["vit"]
    settings = {
        "model.objective": objective,
        "model.img_size": f"({h},{w})",
        "model.embed_dim": vit["embed_dim"],
        "model.depth": vit["depth"],
        "model.num_heads": vit["num_heads"],
        "model.patch_size": vit["patch_size"],
        "data.names": data,
        "data.workers": 0,
        "data.pin_memory": False,
        "train.max_iter": iters,
        **preset["pretrain"],
        "train.seed": seed,
    }
    if ratios is not None:
        settings["model.rgb_mask_ratio"], settings["model.depth_mask_ratio"] = ratios
    per_sample = objective_class(objective).frames_per_sample
    settings["train.batch_size"] = max(1, settings["train.batch_size"] // per_sample)
    return [f"{k}={v}" for k, v in settings.items()]


def finetune_overrides(preset: dict, iters: int, test_set: str = VAL_SET, curve: bool = False) -> list[str]:
    """`key=value` overrides of FINETUNE_CONFIG (after `--tiny`), the same for every initialisation, split
    and seed. The ViT shape is set here for `random`; a pre-trained export brings the same shape itself. `curve`
    evaluates `eval_points` times along the run."""
    h, w = preset["image"]
    vit = preset["vit"]
    settings = {
        "dataloader.test.dataset.names": test_set,
        "dataloader.train.mapper.augmentations.0.short_edge_length": f"[{h}]",
        "dataloader.train.mapper.augmentations.0.max_size": w,
        "dataloader.test.mapper.augmentations.0.short_edge_length": h,
        "dataloader.test.mapper.augmentations.0.max_size": w,
        "model.backbone.net.img_size": w,
        **{f"model.backbone.net.{k}": v for k, v in vit.items()},
        "train.max_iter": iters,
        "train.eval_period": iters // preset["eval_points"] if curve else 0,
        # minutes-long runs: an interrupted one restarts from scratch; keep only model_final.pth
        "train.checkpointer.period": 10 * iters,
        **preset["finetune"],
    }
    return [f"{k}={v}" for k, v in settings.items()]


def ratio_labels(objective: str | None, preset: dict, ratios=None) -> dict:
    """The mask ratios a record's encoder was pre-trained with (None for no pre-training)."""
    if objective is None:
        return {"rgb_mask_ratio": None, "depth_mask_ratio": None}
    rgb, depth = ratios or (preset["pretrain"]["model.rgb_mask_ratio"], preset["pretrain"]["model.depth_mask_ratio"])
    return {"rgb_mask_ratio": rgb, "depth_mask_ratio": depth}


@dataclass(frozen=True)
class Options:
    """What the command line chose; `settings()` is what the runs' results depend on."""

    preset: dict
    data_root: Path
    seeds: int
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    fractions: tuple[int, ...] = (100, 20)
    pretrain_iters: int | None = None
    finetune_iters: int | None = None
    set_pretrain: tuple[str, ...] = ()
    set_finetune: tuple[str, ...] = ()
    ablation: bool = False

    @property
    def lengths(self) -> tuple[int, ...]:
        """Pre-training lengths probed for the objectives; the longest is the one every fine-tune uses."""
        if self.pretrain_iters:
            return (self.pretrain_iters,)
        if self.ablation:
            return (self.preset["ablation"]["pretrain_iters"],)
        return tuple(sorted(self.preset["pretrain_lengths"]))

    @property
    def iters(self) -> tuple[int, int]:
        """(pre-training, fine-tuning) iterations."""
        return max(self.lengths), self.finetune_iters or self.preset["finetune_iters"]

    @property
    def control_iters(self) -> int:
        """Pre-training iterations of the supervised control: the preset's, never more than the longest."""
        return min(self.preset["control_iters"], self.iters[0])

    @property
    def tag(self) -> str:
        return ABLATION_TAG if self.ablation else TAG

    def settings(self) -> dict:
        p = self.preset
        return {
            "campaign": self.tag,
            "preset": p["name"],
            **{key: p[key] for key in TREES.values()},
            "image": list(p["image"]),
            "vit": p["vit"],
            "pretrain_lengths": list(self.lengths),
            "pretrain": p["pretrain"],
            "remedy": json.loads(json.dumps(remedy_of(self))),  # as JSON keeps it
            "control_iters": self.control_iters,
            "finetune_iters": self.iters[1],
            "grid_iters": p["grid_iters"],
            "grid_seeds": p["grid_seeds"],
            "grid": {k: list(v) for k, v in p["grid"].items()},  # as JSON keeps it
            "finetune": p["finetune"],
            "set_pretrain": list(self.set_pretrain),
            "set_finetune": list(self.set_finetune),
            "data_root": str(Path(self.data_root).resolve()),
        }


def data_jobs(options: Options, env: dict) -> list[CommandJob]:
    """Each tree the campaign reads, generated (reusing scenes already there) and prepared like
    `make data-synthetic`; the ablation reads the seed-0 tree only."""
    data_root, jobs = Path(options.data_root).resolve(), []
    for folder, key in TREES.items() if not options.ablation else [("synthetic", "data")]:
        d, raw = options.preset[key], data_root / f"{folder}_raw"
        make = CommandJob(
            name=f"data: generate {folder}",
            stage="data",
            module="tools.make_synthetic",
            env=env,
            args=(
                "--out",
                str(raw),
                *("--scenes", str(d["scenes"]), "--frames-per-scene", str(d["frames_per_scene"])),
                *("--seed", str(d["seed"]), "--height", str(d["height"]), "--width", str(d["width"])),
                "--skip-existing",
            ),
        )
        prepare = CommandJob(
            name=f"data: prepare {folder}",
            stage="data",
            module="tools.prepare_scannet",
            env=env,
            needs=(make.name,),
            args=("--raw", str(raw), "--out", str(data_root / folder), "--frame-skip", "1"),
        )
        jobs += [make, prepare]
    return jobs


def jobs(options: Options, out: Path, store: Path) -> list[Job]:
    """The ablation's runs with `options.ablation`, else the main campaign's (see the module docstring)."""
    env = {"MASK3D_DATA": str(Path(options.data_root).resolve())}
    data = data_jobs(options, env)
    build = ablation_jobs if options.ablation else main_jobs
    return data + needed_exports(build(options, out, store, env, needs=tuple(job.name for job in data)))


def pretrain_and_probe(
    options: Options,
    out: Path,
    store: Path,
    env: dict,
    needs: tuple,
    objective: str,
    seed: int,
    ratios=None,
    *,
    variant: str | None = None,
    iters: int | None = None,
    data: str = PRETRAIN_SET,
    extra: tuple[str, ...] = (),
) -> tuple[PretrainJob, ProbeJob]:
    """One pre-training and the probes of its export. `variant` names an encoder that is not just its objective
    (another length, a remedy); records carry it, and `pretrain_iters`, so the report can tell them apart."""
    name = variant or (objective if ratios is None else f"{objective} rgb{ratios[0]:g} depth{ratios[1]:g}")
    folder = out / "pretrain" / name.replace(" ", "_") / f"seed{seed}"
    iters = iters or options.iters[0]
    labels = {"pretrain_seed": seed, **ratio_labels(objective, options.preset, ratios)}
    if not options.ablation:
        labels |= {"variant": name, "pretrain_iters": iters, "pretrain_data": data}
    pretrain = PretrainJob(
        name=f"pretrain {name} seed{seed}",
        config=PRETRAIN_CONFIG,
        out_dir=folder,
        env=env,
        needs=needs,
        store=store,
        labels={"stage": "pretrain", **labels},
        overrides=(
            *pretrain_overrides(options.preset, objective, iters, seed, ratios, data),
            f"train.tag={options.tag}",
            *extra,
            *options.set_pretrain,
        ),
    )
    probe = ProbeJob(
        name=f"probe {name} seed{seed}",
        out_dir=out / "probe" / name.replace(" ", "_") / f"seed{seed}",
        pretrain=pretrain,
        env=env,
        tag=options.tag,
        store=store,
        labels={"stage": "probe", **labels},
    )
    return pretrain, probe


def random_probe(options: Options, out: Path, store: Path, env: dict, needs: tuple) -> ProbeJob:
    """`random` is one fixed draw of the encoder (benchmark.probe), probed once."""
    return ProbeJob(
        name="probe random",
        out_dir=out / "probe" / "random",
        init="random",
        env=env,
        needs=needs,
        tag=options.tag,
        store=store,
        labels={"stage": "probe", "pretrain_seed": None, **ratio_labels(None, options.preset)},
    )


def encoders(options: Options, out: Path, store: Path, env: dict, needs: tuple) -> tuple[dict, list[Job]]:
    """({init: the pre-training its fine-tunes start from}, every pre-training and probe job): each objective at
    every length (the longest is the init), `none`, the supervised control and the remedy, each on seed 0."""
    longest, chosen, runs = options.iters[0], {}, []

    def add(init, objective, iters=longest, data=POOL_SET, variant=None, extra=(), fine_tuned=True):
        pretrain, probe = pretrain_and_probe(
            options, out, store, env, needs, objective, 0, variant=variant or init, iters=iters, data=data, extra=extra
        )
        runs.extend((pretrain, probe))
        if fine_tuned:
            chosen[init] = pretrain

    for objective in options.objectives:
        for iters in options.lengths:
            longest_one = iters == longest
            add(
                objective,
                objective,
                iters,
                variant=objective if longest_one else f"{objective} {iters}it",
                fine_tuned=longest_one,
            )
    add("none", "none")
    add("supervised", "supervised", options.control_iters, data=CONTROL_SET)
    if remedy := remedy_of(options):
        add(remedy["name"], "mask3d", extra=tuple(remedy["overrides"]))
    return chosen, runs


def remedy_of(options: Options) -> dict | None:
    """The preset's remedy, when mask3d (whose recipe it is fine-tuned with) is in the campaign."""
    return options.preset["remedy"] if "mask3d" in options.objectives else None


def main_jobs(options: Options, out: Path, store: Path, env: dict, needs: tuple) -> list[Job]:
    preset, iters = options.preset, options.iters[1]
    pretrains, pre_runs = encoders(options, out, store, env, needs)
    probes = [random_probe(options, out, store, env, needs)]
    remedy = (remedy_of(options) or {}).get("name")

    def finetune(name, folder, init, *, stage, seed=0, train_set, test_set=VAL_SET, length=iters, grid=(), lr=None):
        """One fine-tune; a grid run (`lr` = (lr, layer decay)) sets its recipe, a main run takes its grid's best."""
        pretrain = pretrains.get(init)
        labels = {"stage": stage, "init": init, "pretrain_seed": 0 if pretrain else None}
        labels |= {"objective": pretrain.labels.get("variant") or init, "variant": init} if pretrain else {}
        recipe = ()
        if lr is not None:
            labels |= {"lr": lr[0], "layer_decay": lr[1]}
            recipe = (f"optimizer.lr={lr[0]}", f"optimizer.params.lr_factor_func.rate={lr[1]}")
        return FinetuneJob(
            name=name,
            config=FINETUNE_CONFIG,
            tiny=True,
            out_dir=folder,
            pretrain=pretrain,
            train_set=train_set,
            seed=seed,
            tag=options.tag,
            env=env,
            needs=needs,
            store=store,
            labels=labels,
            grid=grid,
            overrides=(
                *finetune_overrides(preset, length, test_set, curve=stage == "main" and seed == 0),
                *recipe,
                *options.set_finetune,
            ),
        )

    inits = (*BASELINES, *options.objectives, *([remedy] if remedy else []))
    grids = {init: [] for init in inits}
    for init in inits:
        if init == remedy:  # the remedy is judged with mask3d's recipe: only the pre-training differs
            continue
        for lr in preset["grid"]["lr"]:
            for decay in preset["grid"]["layer_decay"]:
                for seed in range(preset["grid_seeds"]):
                    grids[init].append(
                        finetune(
                            f"grid {init} lr{lr:g} ld{decay:g} seed{seed}",
                            out / "grid" / init / f"lr{lr:g}_ld{decay:g}" / f"seed{seed}",
                            init,
                            stage="grid",
                            seed=seed,
                            length=preset["grid_iters"],
                            train_set=FIT_SET,
                            test_set=HOLDOUT_SET,
                            lr=(lr, decay),
                        )
                    )
    if remedy:
        grids[remedy] = grids["mask3d"]
    main = [
        finetune(
            f"finetune {init} {fraction}% seed{seed}",
            out / "finetune" / f"{iters}it" / init / f"{fraction}pct" / f"seed{seed}",
            init,
            stage="main",
            seed=seed,
            train_set=TRAIN_SETS[fraction],
            grid=tuple(grids[init]),
        )
        for fraction in options.fractions
        for seed in range(options.seeds)
        for init in inits
    ]
    # the longest pre-trainings first, so that two slots end together
    ordered = sorted(pre_runs, key=lambda job: (not isinstance(job, PretrainJob), -int(job.labels["pretrain_iters"])))
    return [*ordered, *probes, *[g for init in inits if init != remedy for g in grids[init]], *main]


def ablation_jobs(options: Options, out: Path, store: Path, env: dict, needs: tuple) -> list[Job]:
    runs = [random_probe(options, out, store, env, needs)]
    for seed in range(options.preset["ablation"]["pretrain_seeds"]):
        for ratios in ABLATION_RATIOS:
            runs.extend(pretrain_and_probe(options, out, store, env, needs, "mask3d", seed, ratios))
    return runs
