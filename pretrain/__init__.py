"""Imports `core` first, which silences third-party import warnings before Detectron2 loads (core.quiet)."""

import core  # noqa: F401
