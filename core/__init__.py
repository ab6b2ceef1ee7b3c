"""What every room shares: atomic file writes and safe checkpoint reads (`core.io`), the checkpointer
(`core.checkpoint`), run folders and their bookkeeping (`core.runs`), provenance (`core.provenance`),
process-group start-up (`core.distributed`), SLURM launches (`core.cluster`), command-line overrides
(`core.overrides`), one-line user errors (`core.cli`) and silenced third-party import warnings (`core.quiet`)."""

from core.quiet import silence_third_party_warnings

silence_third_party_warnings()
