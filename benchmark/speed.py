"""The `make speed` suite: which measurements there are, their targets, one worker process per measurement,
the table and results/speed.json.

A measurement is a function `module:function(**kwargs, tiny=...)` returning rows `{name, value, unit, limit,
ratio, settings, ...}`; they live beside the code they measure (`pretrain/speed_step.py`,
`pretrain/speed_loader.py`, `pretrain/speed_packed.py`, `datasets/speed.py`, `benchmark/speed_inference.py`,
`core/measure.py`). Each one runs in a fresh worker process (`python -m benchmark.speed --worker ...`), so its
peak RSS, or on a GPU `torch.cuda.max_memory_allocated`, is its own; `--toy` runs all of them at toy sizes in one
worker (memory then is the peak since the previous measurement started, `memory_isolated: false`). Targets are
checked on full runs only; a missed target is reported, not an error.

On a CPU, rows also carry `value_cpu` / `ratio_cpu`: the same figures per second of the measuring process's
CPU time, which neighbours on a shared machine do not disturb; targets are judged on them where present
(`judged_on` says which field). Workers run with OMP_WAIT_POLICY=PASSIVE unless it is set (see `_child_env`).
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from core.io import write_text

REPO = Path(__file__).resolve().parent.parent
CPU_EFFICIENCY_VS_TIMM = 0.9  # our step >= 0.9x timm's fraction of the matmul rate on CPU
GPU_MFU = 0.45  # our step >= 0.45 MFU on an H100/H200 in bf16
LOADER_VS_DECODE = 0.75  # >= 0.75 of the decode-only rate
LOADER_PER_CORE = 150.0  # >= 150 frames/s per core
PREPARE_PER_CORE = 40.0  # >= 40 frames/s per core
PACKED_VS_PLAIN = 0.5  # the packed reader >= 0.5 of a plain read of the same bytes
PACKED_LOADER_PER_CORE = 1500.0  # the augmented packed loader >= 1500 frames/s per core at 240x320
INFERENCE_CONFIGS = ("semseg_vit_b", "insseg_vit_b", "semseg_r50", "insseg_r50")
SIZES = ("vit_s", "vit_b")
KEYS = (
    "name",
    "value",
    "unit",
    "limit",
    "ratio",
    "targets",
    "ok",
    "judged_on",
    "value_cpu",
    "ratio_cpu",
    "peak_rss_mb",
    "peak_rss_children_mb",
    "cuda_max_allocated_mb",
    "memory_isolated",
    "settings",
    "job",
    "seconds",
    "error",
)


@dataclass(frozen=True)
class Measurement:
    name: str
    func: str  # "module:function"
    kwargs: dict = field(default_factory=dict)
    rows: tuple[str, ...] = ()  # the rows it returns (default: its name)
    targets: dict = field(default_factory=dict)  # row -> ["ratio >= 0.75", "value >= 150"]
    data: bool = False  # needs the work folder

    @property
    def row_names(self) -> tuple[str, ...]:
        return self.rows or (self.name,)


def measurements(cuda: bool) -> list[Measurement]:
    """Every measurement, in run order (the data ones first: they make the raw tree the others read)."""
    loader_targets = [f"ratio >= {LOADER_VS_DECODE:g}", f"value >= {LOADER_PER_CORE:g}"]
    out = [
        Measurement("synthetic_generate", "datasets.speed:measure_synthetic", data=True),
        Measurement(
            "prepare_scannet",
            "datasets.speed:measure_prepare",
            data=True,
            targets={"prepare_scannet": [f"value >= {PREPARE_PER_CORE:g}"]},
        ),
        Measurement(
            "loader_rgbd",
            "pretrain.speed_loader:measure_loader",
            data=True,
            rows=("loader_rgbd", "loader_rgbd_worker"),
            targets={r: loader_targets for r in ("loader_rgbd", "loader_rgbd_worker")},
        ),
        Measurement(
            "packed",
            "pretrain.speed_packed:measure_packed",
            data=True,
            rows=("packed_read", "packed_loader", "packed_cores_per_gpu"),
            targets={
                "packed_read": [f"ratio >= {PACKED_VS_PLAIN:g}"],
                "packed_loader": [f"value >= {PACKED_LOADER_PER_CORE:g}"],
            },
        ),
    ]
    for dev in ("cpu", "cuda") if cuda else ("cpu",):
        out.append(
            Measurement(
                f"matmul_{dev}_{'bf16' if dev == 'cuda' else 'fp32'}", "core.measure:measure_matmul", {"device": dev}
            )
        )
        for size in SIZES:
            for kind in ("mask3d", "timm"):
                name = f"step_{kind}_{size}_{dev}"
                targets = {name: [f"ratio >= {GPU_MFU:g}"]} if kind == "mask3d" and dev == "cuda" else {}
                out.append(
                    Measurement(
                        name,
                        "pretrain.speed_step:measure_step",
                        {"kind": kind, "size": size, "device": dev},
                        targets=targets,
                    )
                )
        out += [
            Measurement(
                f"inference_{config}_tiny_{dev}",
                "benchmark.speed_inference:measure_inference",
                {"config": config, "device": dev},
            )
            for config in INFERENCE_CONFIGS
        ]
    return out


def derived_names() -> dict[str, tuple[str, str]]:
    """`mask3d_vs_timm_<size>_<dev>` -> the two step rows it divides."""
    return {
        f"mask3d_vs_timm_{s}_{d}": (f"step_mask3d_{s}_{d}", f"step_timm_{s}_{d}")
        for d in ("cpu", "cuda")
        for s in SIZES
    }


def derived_rows(rows: dict, tiny: bool) -> list[dict]:
    """Our fraction of the matmul rate over timm's, from two rows of the same run."""
    out = []
    for name, (ours_name, peer_name) in derived_names().items():
        ours, peer = rows.get(ours_name), rows.get(peer_name)
        if not ours or not peer:
            continue
        row = {
            "name": name,
            "value": ours.get("ratio"),
            "unit": "x matmul",
            "limit": peer.get("ratio"),
            "ratio": None,
            "settings": {"tiny": tiny, "value": ours_name + " ratio", "limit": peer_name + " ratio"},
            "targets": [f"ratio >= {CPU_EFFICIENCY_VS_TIMM:g}"] if name.endswith("_cpu") else [],
        }
        if row["value"] is not None and row["limit"]:
            row["ratio"] = row["value"] / row["limit"]
            if ours.get("ratio_cpu") and peer.get("ratio_cpu"):
                row["ratio_cpu"] = ours["ratio_cpu"] / peer["ratio_cpu"]
        else:
            row["error"] = "a step measurement failed"
        out.append(row)
    return out


def judged_field(row: dict, field: str) -> str:
    """On CPU a target is judged on the CPU-time figure where the row has one (`value_cpu`, `ratio_cpu`):
    run after run on a shared machine it stays within a few percent, while the wall-clock one swings by
    tens of percent with the neighbours (both are in the row)."""
    return f"{field}_cpu" if row.get(f"{field}_cpu") is not None else field


def check(row: dict, tiny: bool):
    """True/False when targets apply and were evaluated, None otherwise (tiny runs, no targets, errors)."""
    if tiny or not row.get("targets") or row.get("error"):
        return None
    ok = True
    for target in row["targets"]:
        name, op, threshold = target.split()
        x = row.get(judged_field(row, name))
        if x is None:
            return None
        ok &= x >= float(threshold) if op == ">=" else x <= float(threshold)
    return bool(ok)


def select(chosen: list[Measurement], only: str | None) -> list[Measurement]:
    """The measurements whose names or rows match any comma-separated shell pattern of `only`."""
    if not only:
        return chosen
    names, unknown = set(), []
    for p in filter(None, (p.strip() for p in only.split(","))):
        hits = [m.name for m in chosen if any(fnmatch.fnmatchcase(n, p) for n in (m.name, *m.row_names))]
        hits += [n for d, parts in derived_names().items() if fnmatch.fnmatchcase(d, p) for n in parts]
        if not hits:
            unknown.append(p)
        names.update(hits)
    if unknown:
        raise SystemExit(
            f"speed: --only {','.join(unknown)} matches no measurement; choose from: "
            + ", ".join(n for m in chosen for n in m.row_names)
            + " (shell patterns allowed)"
        )
    return [m for m in chosen if m.name in names]


# ----------------------------------------------------------------------------------------- worker side
def _error_rows(m: Measurement, error: str, tiny: bool, **extra) -> list[dict]:
    return [
        {
            "name": r,
            "value": None,
            "unit": None,
            "limit": None,
            "ratio": None,
            "settings": {"tiny": tiny},
            "error": error,
            **extra,
        }
        for r in m.row_names
    ]


def run_in_process(names, workdir, tiny, isolated, result=None) -> list[dict]:
    """Runs measurements in this process (a worker); a failing one gives error rows and the next one still
    runs. With `result`, the rows so far are rewritten there after each (a crash keeps the finished ones)."""
    by_name = {m.name: m for m in measurements(cuda=True)}
    rows = []
    for name in names:
        m = by_name[name]
        module, func = m.func.split(":")
        kwargs = dict(m.kwargs, tiny=tiny) | ({"workdir": workdir} if m.data else {})
        t0 = time.perf_counter()
        try:
            got = getattr(importlib.import_module(module), func)(**kwargs)
        except Exception as e:  # noqa: BLE001 - reported in the table, the run goes on
            traceback.print_exc()
            got = _error_rows(m, f"{type(e).__name__}: {e}", tiny)
        for row in got:
            row.update(job=m.name, seconds=round(time.perf_counter() - t0, 2), memory_isolated=isolated)
        rows.extend(got)
        if result:
            write_text(result, json.dumps(rows, default=str))
    return rows


# ----------------------------------------------------------------------------------------- driver side
def cuda_present() -> bool:
    """Whether torch sees a GPU, asked in a subprocess only when the machine looks like it has one."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if not (shutil.which("nvidia-smi") or os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0")):
        return False
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_child_env(),
    )
    return probe.stdout.strip().endswith("True")


def _child_env():
    env = dict(os.environ)
    # Our top-level packages must win over any installed package of the same name.
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("PYTHONWARNINGS", "ignore")
    # GNU OpenMP's default waiting makes a thread spin for its partner; when other jobs share the cores the
    # partner is often descheduled and small-op workloads run up to ~50x slower (measured here: tiny
    # benchmark inference 0.7 vs 37 images/s). Passive waiting keeps the figures about the code, not about
    # the neighbours; a value set by the user wins and is recorded in every row.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def run_worker(chosen: list[Measurement], workdir, tiny, isolated, timeout) -> list[dict]:
    """Runs measurements in a fresh worker process; those it did not finish get error rows."""
    fd, result = tempfile.mkstemp(dir=workdir, prefix="rows-", suffix=".json")
    os.close(fd)
    cmd = (
        [
            sys.executable,
            "-m",
            "benchmark.speed",
            "--worker",
            result,
            "--jobs",
            ",".join(m.name for m in chosen),
            "--workdir",
            workdir,
        ]
        + (["--toy"] if tiny else [])
        + (["--isolated"] if isolated else [])
    )
    error = None
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=_child_env(), timeout=timeout)
        if proc.returncode:
            error = f"worker exited with status {proc.returncode}"
    except subprocess.TimeoutExpired:
        error = f"worker timed out after {timeout} s"
    rows = json.loads(Path(result).read_text() or "[]")  # the measurements finished before any crash
    done = {r["job"] for r in rows}
    return rows + [
        r
        for m in chosen
        if m.name not in done
        for r in _error_rows(m, error or "no result", tiny, job=m.name, memory_isolated=isolated)
    ]


def _fmt(x):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if isinstance(x, float):
        return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def table(rows) -> str:
    head = ("name", "value", "unit", "limit", "ratio", "target", "ok", "value/cpu-s", "ratio/cpu-s", "peak MB")
    lines = [head]
    for r in rows:
        mem = r.get("cuda_max_allocated_mb", r.get("peak_rss_mb"))
        mem = None if mem is None else (f"{mem:.0f}" + (" gpu" if "cuda_max_allocated_mb" in r else ""))
        lines.append(
            (
                r["name"],
                _fmt(r.get("value")),
                r.get("unit") or "-",
                _fmt(r.get("limit")),
                _fmt(r.get("ratio")),
                ", ".join(r.get("targets") or []) or "-",
                _fmt(r.get("ok")),
                _fmt(r.get("value_cpu")),
                _fmt(r.get("ratio_cpu")),
                mem or "-",
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    text = [
        "  ".join(
            str(c).ljust(w) if i in (0, 2, 5) else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    ]
    text.insert(1, "-" * len(text[0]))
    text += [f"  {r['name']}: error: {r['error']}" for r in rows if r.get("error")]
    return "\n".join(text)


def _progress(text: str) -> None:
    print(f"speed: {text}", file=sys.stderr, flush=True)


def run(tiny=False, out="results/speed.json", only=None, isolate=None, timeout=1800) -> list[dict]:
    """Runs the selected measurements, prints the table and writes `out`; returns the rows."""
    t_start = time.perf_counter()
    chosen = select(measurements(cuda_present()), only)
    isolate = (not tiny) if isolate is None else isolate
    workdir = tempfile.mkdtemp(prefix="mask3d-speed-")
    rows = []
    try:
        if not isolate:
            _progress(f"{len(chosen)} measurements in one process{' (toy)' if tiny else ''} ...")
            rows = run_worker(chosen, workdir, tiny, False, timeout)
        for i, m in enumerate(chosen if isolate else [], 1):
            _progress(f"[{i}/{len(chosen)}] {m.name} (own process) ...")
            got = run_worker([m], workdir, tiny, True, timeout)
            rows += got
            for r in got:
                _progress(
                    f"  {r['name']} = {_fmt(r.get('value'))} {r.get('unit') or ''}"
                    + (f", ratio {_fmt(r.get('ratio'))}" if r.get("ratio") is not None else "")
                    + (f"  error: {r['error']}" if r.get("error") else "")
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows += derived_rows({r["name"]: r for r in rows if not r.get("error")}, tiny)
    targets = {row: t for m in chosen for row, t in m.targets.items()}
    for r in rows:
        r.setdefault("targets", targets.get(r["name"], []))
        r["ok"] = check(r, tiny)
        if r["targets"]:
            r["judged_on"] = sorted({judged_field(r, t.split()[0]) for t in r["targets"]})
    rows = [{k: r[k] for k in KEYS if k in r} | {k: v for k, v in r.items() if k not in KEYS} for r in rows]
    write_text(out, json.dumps(rows, indent=1) + "\n")
    print(table(rows))
    failed = [r["name"] for r in rows if r.get("error")]
    missed = [r["name"] for r in rows if r.get("ok") is False]
    print(
        f"speed: {len(rows)} measurements{' (toy)' if tiny else ''} in {time.perf_counter() - t_start:.0f} s, "
        f"{len(missed)} targets missed{' (' + ', '.join(missed) + ')' if missed else ''}, {len(failed)} failed; "
        f"written to {out}"
    )
    return rows


def _worker_main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.speed", description="a `make speed` worker")
    parser.add_argument("--worker", required=True, help="JSON file the rows go to")
    parser.add_argument("--jobs", required=True, help="comma-separated measurement names")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--toy", action="store_true")
    parser.add_argument("--isolated", action="store_true")
    args = parser.parse_args(argv)
    run_in_process(args.jobs.split(","), args.workdir, args.toy, args.isolated, result=args.worker)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main())
