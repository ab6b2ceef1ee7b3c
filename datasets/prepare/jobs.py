"""Run per-item preparation jobs on N worker processes with a progress bar, collecting bad-input errors.

Errors in the input (`DataError`) are collected instead of aborting, so one run lists every bad file; the
finished outputs stay valid because each job writes atomically and the caller reruns only what is missing."""
import multiprocessing as mp

import cv2
from tqdm import tqdm

from datasets.fileio import DataError


def _init_worker(init, initargs):
    cv2.setNumThreads(1)  # one core per worker: throughput scales with --workers, no oversubscription
    if init is not None:
        init(*initargs)


def _call(fn_item):
    fn, item = fn_item
    try:
        return True, fn(item)
    except DataError as e:
        return False, str(e)


def run_parallel(fn, items, workers: int = 1, init=None, initargs=(), desc: str = "preparing"):
    """Apply `fn` to every item; returns (results in item order, error messages). `fn` and `init` must be
    module-level functions (they are pickled to the workers)."""
    items = list(items)
    results, errors = [None] * len(items), []
    if workers <= 1 or len(items) <= 1:
        threads = cv2.getNumThreads()
        _init_worker(init, initargs)
        try:
            outcomes = (_call((fn, it)) for it in items)
            for i, (ok, value) in enumerate(tqdm(outcomes, total=len(items), desc=desc, unit="item")):
                _store(results, errors, i, ok, value)
        finally:
            cv2.setNumThreads(threads)
        return results, errors
    ctx = mp.get_context("spawn")  # no fork of a parent that may hold threads (torch, OpenCV)
    with ctx.Pool(workers, initializer=_init_worker, initargs=(init, initargs)) as pool:
        chunk = max(1, min(16, len(items) // (workers * 8)))
        outcomes = pool.imap(_call, [(fn, it) for it in items], chunksize=chunk)
        for i, (ok, value) in enumerate(tqdm(outcomes, total=len(items), desc=desc, unit="item")):
            _store(results, errors, i, ok, value)
    return results, errors


def _store(results, errors, i, ok, value):
    if ok:
        results[i] = value
    else:
        errors.append(value)
