"""Shared fixtures: a tiny synthetic RGB-D tree, generated and prepared once per test session."""

import os
import tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: busy-waiting starves shared cores
# Module- and session-scoped fixtures run before the per-test store below: they must not reach the real one.
os.environ["MASK3D_RESULTS"] = os.path.join(tempfile.mkdtemp(prefix="mask3d-test-results-"), "runs.jsonl")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _results_store(tmp_path, monkeypatch):
    """No test ever appends to the real results store."""
    monkeypatch.setenv("MASK3D_RESULTS", str(tmp_path / "runs.jsonl"))


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """A data root holding `synthetic_raw/` (ScanNet export layout) and `synthetic/` (prepared), with
    every `synthetic_*` dataset registered: 4 scenes x 4 frames at 96x128 (3 train scenes, 1 val)."""
    from tools import make_synthetic, prepare_scannet

    root = tmp_path_factory.mktemp("data")
    make_synthetic.main(
        [
            "--out",
            str(root / "synthetic_raw"),
            "--scenes",
            "4",
            "--frames-per-scene",
            "4",
            "--seed",
            "0",
            "--height",
            "96",
            "--width",
            "128",
        ]
    )
    prepare_scannet.main(
        ["--raw", str(root / "synthetic_raw"), "--out", str(root / "synthetic"), "--frame-skip", "1", "--workers", "1"]
    )
    os.environ["MASK3D_DATA"] = str(root)
    from datasets.builtin import register_all

    register_all(root)
    return root
