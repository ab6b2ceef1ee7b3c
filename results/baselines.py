"""The baseline registry, `results/baselines.yaml`: a name per initialisation, so `INIT=name` is all a user types.

`benchmark/` resolves a name with `init_spec(name)`; `python -m results.baselines NAME` prints the spec once
its checkpoint file is in place, and otherwise says where to get it (the entry's `note`) before any run
fails on it. `results.report` uses `references` to put each baseline beside its paper rows.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_PATH = Path(__file__).resolve().parent / "baselines.yaml"
REGISTRY_ENV = "MASK3D_BASELINES"


def registry_path() -> Path:
    """`$MASK3D_BASELINES` (a registry of one's own, kept outside the repository), else results/baselines.yaml."""
    return Path(os.environ.get(REGISTRY_ENV) or DEFAULT_PATH)


NAME = re.compile(r"^[a-z0-9_]+$")
SPEC = re.compile(r"^[a-z0-9_]+(:\S+)?$")
REQUIRED = ("name", "init", "backbone")
OPTIONAL = ("pretrain_data", "references", "note")


class BaselineError(ValueError):
    """A malformed registry entry; the message names the file and line."""


@dataclass(frozen=True)
class Baseline:
    name: str
    init: str
    backbone: str
    pretrain_data: str = ""
    references: tuple[str, ...] = ()
    note: str = ""
    where: str = ""


def load_baselines(path: str | Path | None = None) -> dict[str, Baseline]:
    """Name -> Baseline, in file order."""
    path = Path(path or registry_path())
    text = path.read_text(encoding="utf-8")
    try:
        entries = yaml.safe_load(text) or []
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        line = e.problem_mark.line + 1 if getattr(e, "problem_mark", None) else 1
        raise BaselineError(f"{path}:{line}: not valid YAML ({getattr(e, 'problem', e)})") from e
    if not isinstance(entries, list):
        raise BaselineError(f"{path}:1: expected a list of entries, each starting with '- name: ...'")
    baselines: dict[str, Baseline] = {}
    for entry, node in zip(entries, root.value, strict=False):
        where = f"{path}:{node.start_mark.line + 1}"
        baseline = _parse(entry, where)
        if baseline.name in baselines:
            raise BaselineError(
                f"{where}: baseline {baseline.name!r} is already defined at "
                f"{baselines[baseline.name].where}; names must be unique"
            )
        baselines[baseline.name] = baseline
    return baselines


def _parse(entry, where: str) -> Baseline:
    if not isinstance(entry, dict):
        raise BaselineError(f"{where}: expected a mapping with keys {list(REQUIRED + OPTIONAL)}")
    unknown = sorted(set(entry) - set(REQUIRED + OPTIONAL))
    if unknown:
        raise BaselineError(f"{where}: unknown keys {unknown}; allowed: {list(REQUIRED + OPTIONAL)}")
    missing = [k for k in REQUIRED if not entry.get(k)]
    if missing:
        raise BaselineError(f"{where}: missing {missing}")
    name, init = str(entry["name"]), str(entry["init"])
    if not NAME.match(name):
        raise BaselineError(
            f"{where}: name {name!r} must be lower-case letters, digits and '_' (it is a make argument)"
        )
    if not SPEC.match(init):
        raise BaselineError(f"{where}: init {init!r} must be 'kind' or 'kind:PATH', e.g. 'mae:checkpoints/x.pth'")
    references = entry.get("references") or []
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise BaselineError(f"{where}: references must be a list of paper.csv `method` names")
    return Baseline(
        name=name,
        init=init,
        backbone=str(entry["backbone"]),
        pretrain_data=str(entry.get("pretrain_data") or ""),
        references=tuple(references),
        note=str(entry.get("note") or ""),
        where=where,
    )


def check_references(baselines: dict[str, Baseline], methods: set[str]) -> None:
    """A reference that names no paper.csv method is a typo that would silently drop a comparison."""
    for b in baselines.values():
        for ref in b.references:
            if ref not in methods:
                raise BaselineError(
                    f"{b.where}: reference {ref!r} of {b.name!r} is no `method` in paper.csv; known: {sorted(methods)}"
                )


def init_spec(name: str, path: str | Path | None = None) -> str:
    """The benchmark initialisation spec for a baseline name."""
    baselines = load_baselines(path)
    if name not in baselines:
        raise KeyError(
            f"no baseline {name!r} in {path or registry_path()}; known: {', '.join(baselines)}. "
            "Add an entry there (see README 'Adding a baseline')."
        )
    return baselines[name].init


def checkpoint_path(init: str) -> Path | None:
    """The file of a `kind:PATH` spec (relative paths from the repository root, where commands run)."""
    return Path(init.split(":", 1)[1]) if ":" in init else None


def require_checkpoint(name: str, path: str | Path | None = None) -> str:
    """`name`'s init spec, after checking that its checkpoint file exists."""
    spec = init_spec(name, path)
    baseline = load_baselines(path)[name]
    ckpt = checkpoint_path(spec)
    if ckpt is not None and not ckpt.is_file():
        where = f" ({baseline.note})" if baseline.note else ""
        raise FileNotFoundError(
            f"baseline {name!r} ({baseline.where}) needs {ckpt}, which does not exist. "
            f"Get it from its source{where} and save it at {ckpt}, or fix `init` there."
        )
    return spec


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Print a baseline's init spec, or list the registry.")
    parser.add_argument("name", nargs="?", help="baseline name; omitted: list every baseline")
    parser.add_argument(
        "--registry", default=None, help=f"registry file (default ${REGISTRY_ENV}, else {DEFAULT_PATH})"
    )
    args = parser.parse_args(argv)
    try:
        if args.name:
            print(require_checkpoint(args.name, args.registry))
        else:
            for b in load_baselines(args.registry).values():
                print(f"{b.name:28s} {b.backbone:6s} {b.init}")
    except (BaselineError, KeyError, FileNotFoundError) as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
