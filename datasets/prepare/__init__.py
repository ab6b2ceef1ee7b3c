"""Conversion of the official raw formats into prepared trees (the only code that reads them); `tools/prepare_*`
are the command lines."""
