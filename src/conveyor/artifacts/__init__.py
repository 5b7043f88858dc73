"""Artifacts: what a build hands to deployment, kept apart from the cache (pruning the
cache never loses one). A job's `artifacts:` files are collected after it succeeds into
a content-addressed store with an index of versions (`store`), each version immutable
and described by a record (`record`): name, version, the files with SHA-256, size and
media type, and where it came from (commit, branch, pipeline, job, run). Versions are
signed and attested (`signing`: cosign-compatible blob signatures; `provenance`: an
in-toto Statement with a SLSA Provenance predicate in a DSSE envelope), published to
targets with verification (`publish`), promoted between channels and retained.

Owns: the artifact store and everything done to a stored version. Must not import
conveyor.run, cli, checks or gates; it may use deps (the SBOM attached to a version).
"""
