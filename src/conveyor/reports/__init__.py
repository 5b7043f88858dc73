"""Report files jobs declare (`reports:`), read safely and attached to the run."""
