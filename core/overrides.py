"""`key=value` command-line overrides of a LazyConfig, shared by `pretrain` and `benchmark`.

Values are Python literals (`(96,128)`, `True`, `0.8`; Hydra's `true`/`false`/`null` too) or else plain
strings (`a,b` stays a string, not a Hydra sweep). Detectron2 would accept `train.seeed=5` and train the
default seed, or `train.max_iter=abc` and fail later deep inside the schedule; here an unknown key or a
value of the wrong type is an `OverrideError` naming the override, before anything runs.
"""

from __future__ import annotations

import ast
import inspect
import json

from detectron2.config import LazyConfig
from detectron2.utils.registry import locate
from omegaconf import DictConfig, ListConfig, OmegaConf

from core.runs import RunError

_MISSING = "__missing__"
_WORDS = {"true": True, "false": False, "null": None}


class OverrideError(RunError):
    """A malformed override, an unknown key or a value of the wrong type; the message names it."""


def parse_value(text: str):
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _target_accepts(cfg, key: str) -> bool:
    """An argument of the LazyCall target that holds `key`, though the config leaves it at its default."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else None
    target = node.get("_target_") if OmegaConf.is_dict(node) else None
    if target is None:
        return False
    target = locate(target) if isinstance(target, str) else target
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return leaf in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _kind(value) -> str:
    return {bool: "True or False", int: "an integer", float: "a number", str: "text"}.get(type(value), "a list")


def checked_value(key: str, old, text: str):
    """The override's value, converted to the type of the value it replaces (`old`); raises OverrideError."""
    if isinstance(old, DictConfig):
        raise OverrideError(f"override {key}={text!r}: {key} is a section; set its keys ({key}.<name>=...)")
    if old is None or old == _MISSING:
        return parse_value(text)
    if isinstance(old, str):  # text stays text (`train.tag=5`), but null is still None
        return None if text == "null" else text
    value = parse_value(text)
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    }.get(type(old))
    if isinstance(old, (ListConfig, list, tuple)):
        # a comma-separated string stands for a list of names (`data.names=a,b`)
        ok = lambda v: isinstance(v, (list, tuple)) or (isinstance(v, str) and all(isinstance(x, str) for x in old))  # noqa: E731
    if ok is not None and not ok(value):
        shown = OmegaConf.to_container(old) if isinstance(old, ListConfig) else old
        raise OverrideError(f"override {key}={text!r}: expected {_kind(old)} like the default {shown!r}")
    return float(value) if isinstance(old, float) and isinstance(value, int) else value


def apply(cfg, overrides, config_file: str):
    """`cfg` with the `key=value` overrides applied (through `LazyConfig.apply_overrides`)."""
    quoted = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if item.startswith("-"):
            raise OverrideError(
                f"{item!r} after the key=value overrides: put options first, e.g. `... {item} key=value`"
            )
        if not sep or not key or key.startswith(("+", "~")):
            raise OverrideError(f"override {item!r} is not key=value with an existing key")
        old = OmegaConf.select(cfg, key, default=_MISSING)
        if old == _MISSING and not _target_accepts(cfg, key):
            raise OverrideError(f"override {key!r}: no such key in {config_file}")
        quoted.append(f"{key}={json.dumps(checked_value(key, old, text))}")
    return LazyConfig.apply_overrides(cfg, quoted)
