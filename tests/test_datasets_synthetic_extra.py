"""The extra synthetic trees (`make data-synthetic-extra`): other generator seeds give other scenes, so neither the
pre-training pool nor the supervised control shares a frame with the fine-tuning tree's val scenes; the Makefile runs
exactly the commands `datasets.builtin` names for them."""

import re
from pathlib import Path

import numpy as np
import pytest

from datasets.builtin import EXTRA_SYNTHETIC, synthetic_commands
from datasets.fileio import read_rgb
from datasets.synthetic.export import split
from tools import make_synthetic

REPO = Path(__file__).resolve().parent.parent
SCENES, FRAMES = 5, 3  # the last scene is val


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """{folder: raw tree} of the fine-tuning tree's seed and each extra tree's, at a toy size."""
    root = tmp_path_factory.mktemp("extra")
    seeds = {"synthetic": 0, **{folder: seed for folder, (seed, _, _) in EXTRA_SYNTHETIC.items()}}
    for folder, seed in seeds.items():
        args = ["--scenes", str(SCENES), "--frames-per-scene", str(FRAMES), "--height", "48", "--width", "64"]
        assert make_synthetic.main(["--out", str(root / folder), "--seed", str(seed), "--workers", "1", *args]) == 0
    return {folder: root / folder for folder in seeds}


def _frames(tree: Path, scenes) -> list[np.ndarray]:
    return [read_rgb(str(f)) for s in scenes for f in sorted((tree / "scans" / s / "color").glob("*.jpg"))]


def test_other_seeds_share_no_frame_with_the_fine_tuning_val_scenes_or_each_other(trees):
    assert len(set(EXTRA_SYNTHETIC.values())) == len(EXTRA_SYNTHETIC) and all(
        seed != 0 for seed, _, _ in EXTRA_SYNTHETIC.values()
    )
    train, val = split(SCENES)
    val_frames = _frames(trees["synthetic"], val)
    assert len(val_frames) == FRAMES
    extra = {folder: _frames(trees[folder], train + val) for folder in EXTRA_SYNTHETIC}
    for folder, frames in extra.items():
        assert len(frames) == SCENES * FRAMES
        assert not any(np.array_equal(a, b) for a in val_frames for b in frames), folder
        # not merely a recolouring: the same scene index is another room
        assert all(np.abs(a.astype(int) - b.astype(int)).mean() > 5 for a in val_frames for b in frames), folder
    pool, control = extra.values()
    assert not any(np.array_equal(a, b) for a in pool for b in control)


def test_the_makefile_runs_the_commands_the_registry_names():
    recipe = re.search(r"^data-synthetic-extra:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), flags=re.M)
    lines = [line.strip() for line in recipe.group(1).splitlines()]
    wanted = [
        "$(PY) -m " + " ".join(command)
        for folder in EXTRA_SYNTHETIC
        for command in synthetic_commands(folder, "$(DATA_ROOT)")
    ]
    assert lines == wanted
    seed, scenes, _ = EXTRA_SYNTHETIC["synthetic_pool"]
    assert len(split(scenes)[0]) >= 4 * len(split(24)[0])  # the pool's train split: >= 4x the labelled scenes
