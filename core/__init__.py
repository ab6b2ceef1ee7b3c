"""What every room shares: atomic file writes and safe checkpoint reads (`core.io`), the checkpointer
(`core.checkpoint`), run folders and their bookkeeping (`core.runs`), provenance (`core.provenance`) and
process-group start-up (`core.distributed`)."""
