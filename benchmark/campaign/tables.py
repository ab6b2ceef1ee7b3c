"""The paper tables we can run, as campaigns: which runs fill each table of `results/paper.csv`.

A campaign is one task on one dataset (the configs `benchmark/configs/<dataset>/<task>_<backbone>.py`), its
training splits (the data-efficient curve: % of ScanNet training scenes) and, given by the user, the inits
and the number of seeds. Every (init, split, seed) is one fine-tune (`benchmark.train_net`), tagged
`reproduce`, labelled with the campaign's name and appended to the campaign's store,
`results/runs/<name>.jsonl` (`results.store.campaign_path`), which `make tables` reads.

`tiny` runs the same runs with the CPU-sized recipe (`train_net --tiny`) on the synthetic tree in ScanNet's
layout, whatever the campaign's dataset: a check of the whole path, never a paper number (the report keeps
tiny and synthetic runs out of the paper's tables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from benchmark.campaign.jobs import FinetuneJob
from benchmark.campaign.runner import REPO
from results.tables import DATA_EFFICIENT, PAPER_TABLES, Spec

TAG = "reproduce"
DEFAULT_INITS = ("mask3d", "imagenet_mae_vitb", "random")
DEFAULT_SEEDS = 3
# task -> (train, test) of the synthetic tree, what --tiny trains and evaluates on
TINY_SETS = {
    "semseg": ("synthetic_sem_seg_train", "synthetic_sem_seg_val"),
    "insseg": ("synthetic_instance_train", "synthetic_instance_val"),
    "depth": ("synthetic_depth_train", "synthetic_depth_val"),
}


@dataclass(frozen=True)
class Campaign:
    name: str  # TABLE=, and the name of its store under results/runs/
    dataset: str
    task: str  # the config family: semseg, insseg (instance segmentation and detection) or depth
    train_sets: dict[int, str] = field(default_factory=dict)  # % of training data -> dataset; empty: the config's

    @property
    def spec(self) -> Spec:
        """The report's table this campaign fills."""
        if len(self.train_sets) > 1:
            return DATA_EFFICIENT
        return next(s for s in PAPER_TABLES if s.dataset == self.dataset and self.task in s.tasks)

    def config(self, backbone: str) -> str:
        return f"benchmark/configs/{self.dataset}/{self.task}_{backbone}.py"

    def splits(self, tiny: bool) -> dict[int, tuple[str | None, str | None]]:
        """% of training data -> (train set, test set) overrides; None keeps the config's."""
        if not tiny:
            return {pct: (name, None) for pct, name in self.train_sets.items()} or {100: (None, None)}
        train, test = TINY_SETS[self.task]
        return {pct: (train + ("" if pct == 100 else f"_{pct}pct"), test) for pct in self.train_sets} or {
            100: (train, test)
        }


_FRACTIONS = {pct: "scannet_sem_seg_train" + ("" if pct == 100 else f"_{pct}pct") for pct in (20, 40, 60, 80, 100)}
CAMPAIGNS = {
    c.name: c
    for c in (
        Campaign("scannet_semseg", "scannet", "semseg"),
        Campaign("scannet_data_efficient", "scannet", "semseg", _FRACTIONS),
        Campaign("nyuv2_semseg", "nyuv2", "semseg"),
        Campaign("cityscapes_semseg", "cityscapes", "semseg"),
        Campaign("scannet_insseg", "scannet", "insseg"),
        Campaign("nyuv2_insseg", "nyuv2", "insseg"),
        Campaign("scannet_depth", "scannet", "depth"),
        Campaign("nyuv2_depth", "nyuv2", "depth"),
    )
}


@dataclass(frozen=True)
class Run:
    """One planned fine-tune and what stops it from starting (empty when nothing does)."""

    job: FinetuneJob
    init: str
    backbone: str
    fraction: int
    problems: tuple[str, ...] = ()


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def plan(
    campaign: Campaign,
    inits: list[str],
    seeds: int,
    out: Path,
    store: Path,
    tiny: bool = False,
    iters: int | None = None,
    env: dict | None = None,
) -> list[Run]:
    """Every run of the campaign, each with the problems found before anything starts: an init that does not
    resolve (or whose file is missing), a config missing for its backbone, a dataset not prepared under the
    data root (registered by the caller: `datasets.builtin.register_all`)."""
    from benchmark import inits as init_specs
    from benchmark.architecture import ArchitectureError
    from benchmark.suite import pick_backbone
    from benchmark.train_net import init_id, require_registered
    from core.runs import RunError

    overrides = (f"train.max_iter={iters}", f"train.checkpointer.period={iters}") if iters else ()
    runs = []
    for init in inits:
        problems, backbone, folder = [], "vit_b", slug(init)
        try:
            spec = init_specs.parse(init)
            shape = init_specs.architecture(init_specs.convert(spec))  # the config family the checkpoint fits
            backbone = pick_backbone(spec, None, shape)
            folder = init_id(spec)
        except (init_specs.InitError, ArchitectureError) as e:
            problems.append(f"init {init!r}: {e}")
        config = campaign.config(backbone)
        if not (REPO / config).is_file():
            problems.append(f"no config {config} for init {init!r} ({backbone})")
        for pct, (train, test) in campaign.splits(tiny).items():
            missing = []
            for name in (train, test):
                try:
                    if name:
                        require_registered([name])
                except RunError as e:
                    missing.append(str(e))
            if not (train and test):
                missing += _config_sets_missing(config, train, test)
            test_override = (f"dataloader.test.dataset.names={test}",) if test else ()
            for seed in range(seeds):
                job = FinetuneJob(
                    name=f"{campaign.name} {init} {pct}% seed{seed}",
                    config=config,
                    init=init,
                    out_dir=out / folder / f"{pct}pct" / f"seed{seed}",
                    train_set=train,
                    seed=seed,
                    tiny=tiny,
                    tag=TAG,
                    overrides=(*test_override, *overrides),
                    labels={"campaign": campaign.name},
                    store=store,
                    env=env or {},
                )
                runs.append(Run(job, init, backbone, pct, tuple(problems + missing)))
    return runs


@cache
def config_facts(config: str) -> dict:
    """What the plan and the cost estimate read from a config: its datasets, batch and iterations."""
    from detectron2.config import LazyConfig

    cfg = LazyConfig.load(str(REPO / config))
    names = [cfg.dataloader.train.dataset.names, cfg.dataloader.test.dataset.names]
    return {
        "train": names[0],
        "test": names[1],
        "batch": int(cfg.dataloader.train.total_batch_size),
        "max_iter": int(cfg.train.max_iter),
    }


def _config_sets_missing(config: str, train: str | None, test: str | None) -> list[str]:
    """Problems with the datasets a config names itself (those not overridden)."""
    from benchmark.train_net import require_registered
    from core.runs import RunError

    if not (REPO / config).is_file():
        return []
    facts = config_facts(config)
    problems = []
    for name, given in ((facts["train"], train), (facts["test"], test)):
        if given is None:
            try:
                require_registered([name] if isinstance(name, str) else list(name))
            except RunError as e:
                problems.append(str(e))
    return problems
