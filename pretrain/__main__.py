"""`python -m pretrain --config FILE [--resume] key=value ...` (see pretrain/train.py)."""

import sys

from pretrain.train import main

if __name__ == "__main__":
    sys.exit(main())
