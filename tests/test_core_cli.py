"""How the command lines end (`core.cli.run`): exit codes, Ctrl-C, one-line user errors, tracebacks for bugs; that
every run-making command line ends through it; and that imports flow one way between the top-level packages."""

import ast
from pathlib import Path

import pytest

from core import cli

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("tools", "benchmark", "pretrain", "datasets", "results", "core")
# What each package may import of ours (docs/design.md): tools -> benchmark -> pretrain -> datasets -> core,
# and results -> core; pretrain and benchmark write their records through results.store.
MAY_IMPORT = {
    "core": {"core"},
    "datasets": {"core", "datasets"},
    "results": {"core", "results"},
    "pretrain": {"core", "datasets", "results", "pretrain"},
    "benchmark": {"core", "datasets", "results", "pretrain", "benchmark"},
}


class UserError(ValueError):
    pass


def test_run_returns_exit_codes_and_keeps_ctrl_c_and_tracebacks(capsys):
    assert cli.run(lambda: None, (UserError,)) == 0
    assert cli.run(lambda: {"loss": 1.0}, (UserError,)) == 0  # a result is not an exit code
    assert cli.run(lambda: 3, (UserError,)) == 3

    def bad():
        raise UserError("fix\n  this")

    assert cli.run(bad, (UserError,)) == 1
    assert capsys.readouterr().err == "error: fix this\n"

    def interrupted():
        raise KeyboardInterrupt

    assert cli.run(interrupted, (UserError,), interrupted="stopped; rerun to resume") == cli.INTERRUPTED == 130
    assert capsys.readouterr().err == "stopped; rerun to resume\n"

    def bug():
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        cli.run(bug, (UserError,))


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "module, inner, argv",
    [
        ("pretrain.train", "launch", ["--config", "pretrain/configs/default_cpu.py"]),
        ("benchmark.train_net", "launch", ["--config-file", "benchmark/configs/scannet/semseg_vit_b.py"]),
        ("benchmark.suite", "bench", ["scannet"]),
        ("benchmark.probe", "probe", ["--init", "random", "--dataset", "synthetic"]),
        ("tools.reproduce", "_reproduce", ["repro_mini"]),
        ("tools.repro_mini", "run", ["--toy"]),
    ],
)
def test_every_run_command_line_ends_through_cli_run(module, inner, argv, monkeypatch):
    """Ctrl-C inside any of them is exit code 130, not a traceback."""
    import importlib

    mod = importlib.import_module(module)
    monkeypatch.setattr(mod, inner, _interrupt)
    assert mod.main(argv) == cli.INTERRUPTED


def _imports(path: Path) -> set[str]:
    """Top-level packages of ours that `path` imports (anywhere in the file, deferred imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_imports_flow_one_way(package):
    wrong = {
        str(p.relative_to(REPO)): sorted(_imports(p) - MAY_IMPORT[package])
        for p in sorted((REPO / package).rglob("*.py"))
        if _imports(p) - MAY_IMPORT[package]
    }
    assert not wrong, wrong
