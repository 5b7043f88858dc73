"""Quality gates: what a job's reports (tests, coverage, findings), outputs and duration
must show, evaluated as each job finishes and for the whole pipeline at the end; the
keeper that runs them, with the checks, around the scheduler's jobs; and `review`, the
gates of a past run evaluated again.

Features layer: may import checks, reports, executor, workspace and the shared types;
never run (the scheduler calls the keeper through `run.scheduler.RunHooks`), cli or web."""
