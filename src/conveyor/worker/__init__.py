"""`conveyor worker`: a bot of the Remote Workers API (google.devtools.remoteworkers.v1test2)
that runs the actions a REAPI server (BuildGrid) schedules: `bot` holds the sessions and
their leases, `materialize` the blob cache and each lease's input root, `run` one lease's
execution (the job itself goes through executor.local, like a local job)."""
