"""`conveyor init` and `conveyor plan`: a pipeline started from what the workspace is
(`detect`: ecosystems, managers, lockfiles, members, tools, toolchain versions) and from
a requirements hand-off (`requirements`: the `build_requirements` document read with
positions; `plan`: what it asks mapped onto the pipeline, and what could not be), written
with a comment on each choice (`pipeline`, `jobs`, `recipes`) and never over a file
without being told (`output`)."""
