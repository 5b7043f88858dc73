"""Report files jobs declare (`reports:`: JUnit, coverage, SARIF, GitLab Code Quality),
read safely into typed results and attached to the run.

Features layer: imports the shared types, and the Code Quality severity table of its
writer (`conveyor.export.codequality`, so the two cannot drift apart); never run, cli or
web."""
