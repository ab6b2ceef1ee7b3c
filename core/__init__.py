"""What every room shares: atomic file writes and safe checkpoint reads (`core.io`)."""
