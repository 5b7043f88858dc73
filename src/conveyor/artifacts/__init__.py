"""Artifacts: what a build hands to deployment, kept apart from the cache (pruning the
cache never loses one). A job's `artifacts:` files are collected after it succeeds (or
as its `when:` says) into a content-addressed store with an index of versions (`store`,
`collect`), each version immutable and described by a record (`record`): name, version
(`versioning`), the files with SHA-256, size and media type (`media`), and where it
came from (commit, branch, pipeline, job, run, build number). Versions are verified
(`verify`), fetched (`fetch`, `archive`), promoted between channels and retained
(`retention`); the workspace's SBOM is attached to each (`sbom`). Versions are signed
and attested (`signing`: cosign-compatible blob signatures; `provenance`: an in-toto
Statement with a SLSA Provenance predicate in a DSSE envelope) and published to targets
with verification (`publish`).

What those build on: `ArtifactStore.attach` (a signature, provenance statement or SBOM
stored as a blob beside a version: with promotion, expiry and `record_publication`, the
only changes a stored version allows), `ArtifactStore.files` (a version's files as
local blob paths), and `verify.VersionCheck` (a check beyond the digests, such as a
signature against a public key, that `verify`, `fetch` and `promote` run).

Owns: the artifact store and everything done to a stored version. Must not import
conveyor.run, cli, checks or gates; it may use deps (the SBOM attached to a version).
"""
