"""How our command lines end (`run`): a user error is one line on stderr and exit code 1, Ctrl-C is exit code 130
with what finished kept, and anything else is a bug in our code and keeps its traceback.

User errors are the caller's `user_errors` plus the file-system faults a user can fix (a read-only or full
output folder). An exception re-raised from a DataLoader worker carries the worker's whole traceback in its
message; the user sees only its last line.
"""

from __future__ import annotations

import difflib
import errno
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

DISK_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)
RERUN_HINT = "interrupted: finished runs are kept; run the same command again to continue"
RESUME_HINT = (
    "interrupted: checkpoints already written are kept; rerun the same command with --resume to continue from "
    "the last one"
)
ADVICE = (
    "free space or fix the permissions, then add --resume to continue from the last checkpoint, which is "
    "kept (or choose another train.output_dir)"
)
RERUN_ADVICE = "free space or fix the permissions, then run the same command again (finished runs are kept)"
INTERRUPTED = 130  # what a shell reports for a command stopped by Ctrl-C (128 + SIGINT)


def did_you_mean(word: str, choices) -> str:
    """`; did you mean X?` with the closest of `choices` (difflib), or nothing when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def user_message(e: BaseException, user_errors: tuple, disk_advice: str = ADVICE) -> str | None:
    """The one line to show for `e`, or None when `e` is not a user error."""
    if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
        return f"{e.filename or 'output'}: {e.strerror}; {disk_advice}"
    if not isinstance(e, user_errors):
        return None
    text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    text = str(text)
    if "Original Traceback" in text:  # DataLoader worker: "...\npackage.Error: message"
        last = text.rstrip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return " ".join(text.split()) or type(e).__name__


def run(
    func: Callable[[], object], user_errors: tuple, disk_advice: str = ADVICE, interrupted: str = RESUME_HINT
) -> int:
    """The exit code of a command line: `func()`'s when it returns an int (e.g. a campaign with failed runs), else
    0; 1 with `error: <one line>` on stderr for a user error (`disk_advice` ends the line of a full or read-only
    disk); `INTERRUPTED` on Ctrl-C, after the line `interrupted` (how to resume). Other exceptions propagate."""
    try:
        code = func()
    except KeyboardInterrupt:
        if interrupted:
            print(interrupted, file=sys.stderr)
        return INTERRUPTED
    except Exception as e:
        message = user_message(e, user_errors, disk_advice)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


@contextmanager
def one_line_in_logs(user_errors: tuple) -> Iterator[None]:
    """Detectron2's trainer logs every exception with its traceback before re-raising it; while inside, a user
    error is left to the caller, which reports it in one line."""
    log, flt = logging.getLogger("detectron2.engine.train_loop"), OneLineUserErrors(user_errors)
    log.addFilter(flt)
    try:
        yield
    finally:
        log.removeFilter(flt)


class OneLineUserErrors(logging.Filter):
    """Drops the logged traceback of a user error."""

    def __init__(self, user_errors: tuple):
        super().__init__()
        self.user_errors = user_errors

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or user_message(error, self.user_errors) is None


def log_to_file(folder, message: str) -> None:
    """Appends `error: message` to the run's log.txt only (the console gets it once, from `run`); a full or
    read-only folder is already the error being reported."""
    try:
        with open(Path(folder) / "log.txt", "a", encoding="utf-8") as f:
            f.write(f"error: {message}\n")
    except OSError:
        pass
