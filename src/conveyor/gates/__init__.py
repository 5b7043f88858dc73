"""Quality gates: what a job's reports (tests, coverage, findings), outputs and duration
must show, evaluated as each job finishes and for the whole pipeline at the end; and the
keeper that runs them, with the checks, around the scheduler's jobs."""
