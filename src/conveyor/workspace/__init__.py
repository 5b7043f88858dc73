"""The workspace on disk: which files exist, what they hold (digests with a stat cache),
what git tracks and ignores, and glob matching.

Owns: `files` (digests, the scan, the stat cache), `git` (the one module that runs git)
and `globs` (the patterns of `inputs:`, `outputs:` and `--affected`). Imports only the
shared types (model, errors, units, fsutil); never config, graph, cache, executor or
anything above.
"""
