"""One run, start to end: `scheduler` (ready jobs to the executor, cache hits, retries,
fail-fast, cancel, events), `compose` (a run's parts wired together: config, cache,
executor, gates, history, sinks), `rundir` (the run's directory and the sinks that fill
it), `lock` (one run per workspace at a time) and `undeclared` (writes a job did not
declare).

May import every layer below it; never `cli` or `web`.
"""
