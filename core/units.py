"""How each metric is written, defined once so logs, summaries, the report and the README agree: Detectron2's
mIoU, pixel accuracies and AP are percentages (0-100) with 2 decimals; depth metrics (δ thresholds as fractions,
relative errors, errors in metres) with 3. Names are the results store's `section/metric` keys."""

# Detectron2 reports segmentation and COCO metrics in percent (an AP of 0.3 is 0.3 %, not 30 %).
PERCENT_SECTIONS = ("sem_seg", "bbox", "segm")
# Depth errors in metres; the other depth metrics (delta thresholds as fractions, relative errors) have no unit.
METRE_METRICS = ("depth/RMSE", "depth/SqRel")


def is_percent(name: str) -> bool:
    return name.split("/", 1)[0] in PERCENT_SECTIONS


def digits(name: str) -> int:
    """Decimals of `name`: 2 for a percentage, 3 for anything else (AbsRel 0.274, δ<1.25 0.871, RMSE 0.512 m)."""
    return 2 if is_percent(name) else 3


def number(name: str, value: float, sign: bool = False) -> str:
    """`value` with the metric's decimals, `+`/`-` first with `sign` (a difference)."""
    return f"{value:{'+' if sign else ''}.{digits(name)}f}"


def with_unit(name: str, value: float) -> str:
    """`bbox/AP 0.30 %`, `depth/RMSE 0.512 m`, `depth/delta1 0.871`: a summary never leaves the scale to guesswork."""
    unit = " %" if is_percent(name) else " m" if name in METRE_METRICS else ""
    return f"{name} {number(name, value)}{unit}"
