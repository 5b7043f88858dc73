"""The workspace on disk: which files exist, what they hold (digests with a stat cache),
what git tracks and ignores, and glob matching.

Owns: `files` (digests, the scan, the stat cache) and `git` (the one module that runs
git). Imports only the shared types (model, errors, units, fsutil); never config, graph,
cache, executor or anything above.
"""
