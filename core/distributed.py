"""One entry for single-process, `--num-gpus N` and torchrun runs of `pretrain` and `benchmark`.

Detectron2's `launch` spawns its own workers; under torchrun the workers already exist and the
environment describes the process group, which `launch` cannot join, so it is set up here the same way
(`comm`'s local group included, so `comm.get_local_rank()` works in both).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from detectron2.engine import launch as d2_launch
from detectron2.utils import comm


def started_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "LOCAL_RANK" in os.environ


def launch(
    main_func, num_gpus: int = 1, *, num_machines: int = 1, machine_rank: int = 0, dist_url: str = "auto", args=()
):
    """Runs `main_func(*args)` in every process of the run; returns its result in a single process."""
    if not started_by_torchrun():
        return d2_launch(
            main_func, num_gpus, num_machines=num_machines, machine_rank=machine_rank, dist_url=dist_url, args=args
        )
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        comm.create_local_process_group(int(os.environ["LOCAL_WORLD_SIZE"]))
        comm.synchronize()
        result = main_func(*args)
        # Ranks leave together: one that tore the group down while rank 0 still wrote its outputs was, now and
        # then, aborted in gloo's threads ("terminate called without an active exception", SIGABRT).
        comm.synchronize()
        return result
    finally:
        dist.destroy_process_group()
