"""`key=value` command-line overrides of a LazyConfig, shared by `pretrain` and `benchmark`.

Values are Python literals (`(96,128)`, `True`, `0.8`; Hydra's `true`/`false`/`null` and `[a,b]` lists of
bare words too) or else plain strings (`a,b` stays a string, not a Hydra sweep), kept as typed: any
character, non-ASCII or backslash, reaches the config unchanged. Detectron2 would accept `train.seeed=5` and
train the default seed, or `train.max_iter=abc` and fail later deep inside the schedule; here an unknown key
(with the closest known one) or a value of the wrong type is an `OverrideError` naming the override, before
anything runs.
"""

from __future__ import annotations

import ast
import inspect
import json

from detectron2.utils.registry import locate
from omegaconf import DictConfig, ListConfig, OmegaConf

from core.cli import did_you_mean
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
        if text.startswith("[") and text.endswith("]"):  # Hydra's list of bare words: [a,b]
            return [parse_value(x.strip()) for x in text[1:-1].split(",") if x.strip()]
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


def _keys(node, prefix: str = "") -> list[str]:
    """Every dotted key of a config, for suggesting the closest to a mistyped one."""
    if not OmegaConf.is_dict(node):
        return []
    return [k for key, v in node.items_ex(resolve=False) for k in (prefix + str(key), *_keys(v, f"{prefix}{key}."))]


def apply(cfg, overrides, config_file: str):
    """`cfg` with the `key=value` overrides applied. Values are set directly (`OmegaConf.update`, as
    `LazyConfig.apply_overrides` does after parsing), not re-serialised through Hydra's grammar, which would
    turn `\\u00e4` escapes and backslashes into literal text."""
    updates = []
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
            raise OverrideError(f"override {key!r}: no such key in {config_file}{did_you_mean(key, _keys(cfg))}")
        updates.append((key, checked_value(key, old, text)))
    for key, value in updates:
        OmegaConf.update(cfg, key, json.loads(json.dumps(value)), merge=True)  # tuples become lists for OmegaConf
    return cfg


def require_counts(cfg, keys, config_file: str) -> None:
    """Counts (iterations, periods, batch sizes) below 1 are an OverrideError naming them: a run of -5
    iterations would otherwise end "finished", untrained, and be stored as a result."""
    bad = [f"{k}={v!r}" for k in keys if not (isinstance(v := OmegaConf.select(cfg, k), int) and v >= 1)]
    if bad:
        raise OverrideError(f"{', '.join(bad)} in {config_file}: must be at least 1")
