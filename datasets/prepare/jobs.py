"""Run a per-item preparation job on N worker processes with a progress bar, collecting bad-input errors.

Errors in the input (`DataError`) are collected instead of aborting, so one run lists every bad file; the
finished outputs stay valid because each job writes atomically and the caller reruns only what is missing.
The job is a picklable callable (its tables travel once per worker, not once per item)."""

import multiprocessing as mp

import cv2
from tqdm import tqdm

from datasets.fileio import DataError

_JOB = None  # the job of this worker process, set once by the pool's initializer


def _init_worker(job):
    global _JOB
    cv2.setNumThreads(1)  # one core per worker: throughput scales with workers, no oversubscription
    _JOB = job


def _call(job, item):
    try:
        return True, job(item)
    except DataError as e:
        return False, str(e)


def _call_in_worker(item):
    return _call(_JOB, item)


def run_parallel(job, items, workers: int = 1, desc: str = "preparing"):
    """Apply `job` to every item; returns (results in item order, error messages)."""
    items = list(items)
    results, errors = [None] * len(items), []

    def collect(outcomes):
        for i, (ok, value) in enumerate(tqdm(outcomes, total=len(items), desc=desc, unit="item")):
            if ok:
                results[i] = value
            else:
                errors.append(value)

    if workers <= 1 or len(items) <= 1:
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            collect(_call(job, it) for it in items)
        finally:
            cv2.setNumThreads(threads)
        return results, errors
    ctx = mp.get_context("spawn")  # no fork of a parent that may hold threads (torch, OpenCV)
    with ctx.Pool(workers, initializer=_init_worker, initargs=(job,)) as pool:
        collect(pool.imap(_call_in_worker, items, chunksize=max(1, min(16, len(items) // (workers * 8)))))
    return results, errors
