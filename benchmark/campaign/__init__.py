"""Campaigns: the runs a result needs, as typed job records (`jobs`), run by one runner (`runner`)."""
