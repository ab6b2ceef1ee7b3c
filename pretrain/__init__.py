"""Silences import-time third-party warnings before Detectron2 loads (see core.quiet)."""

from core.quiet import silence_third_party_warnings

silence_third_party_warnings()
