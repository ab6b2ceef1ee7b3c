"""`make help`: every target listed once, its description in one column whatever the longest name."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_help_lists_every_target_in_one_column():
    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    documented = re.findall(r"^([a-z-]+):.*## ", (REPO / "Makefile").read_text(), flags=re.M)
    assert [line.split()[0] for line in lines] == documented
    columns = {re.match(r"  \S+\s+", line).end() for line in lines}
    assert len(columns) == 1, f"descriptions start at columns {sorted(columns)}"
    assert columns.pop() == max(map(len, documented)) + 4  # two spaces either side of the longest name
