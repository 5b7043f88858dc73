"""Checks before the build (tools, disk, environment, manifests, lockfiles, committed
secrets, unmatched `inputs:`) and after it (required and forbidden files, sizes, a build
report): each a declarative, tested feature that says what was expected, what was found
and how to fix it (conveyor.model.CheckResult).

Features layer: may import deps, reports, cache, executor, history, config, graph,
workspace and the shared types; never run, cli or web."""
