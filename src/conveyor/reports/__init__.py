"""Report files jobs declare (`reports:`: JUnit, coverage, SARIF), read safely into
typed results and attached to the run.

Features layer: imports the shared types only; never run, cli or web."""
