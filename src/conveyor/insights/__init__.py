"""What the history means: `stats` (durations, success and cache-hit rates, trends and
advice), `flaky` (tests that pass and fail on the same code) and `critical_path` (the
chain of jobs that bounds a run's wall time).

Reads the history through `history.store`; imports nothing of run, cli or web.
"""
