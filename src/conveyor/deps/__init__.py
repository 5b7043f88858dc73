"""Dependencies of the workspace as data: what each manifest asks for (`Requirement`) and
what each lockfile pins (`Component`: name, exact version, ecosystem, the file it came
from, direct or transitive), one module per ecosystem under `ecosystems/`. The lockfile
check (conveyor.checks.lockfiles) judges manifests against lockfiles with these; the
dependency scanner (vulnerabilities, licenses, outdated versions, SBOM) builds on them.

The manifest parsers take documents already decoded (JSON and TOML syntax, and its errors
with their positions, are the caller's) or, for Go's line formats, the text; the
inventory's lockfile readers take a `LockSource` (the text, and a way to read a manifest
beside it). They read no other files, run no package manager and need no network, so
they are cheap to call and test.

Owns: the meaning of manifests and lockfiles. Must not import conveyor.checks, gates,
reports, run or cli (they build on this package, not the other way round), nor any
heavy library at module level.
"""
