"""Caching: `interface` says what a store is (a CAS and an action cache, in REAPI's
terms) and `local` keeps one on this machine's disk (remote REAPI and tiered stores plug
in beside it); `stores` opens the one a run uses; `keys` builds a job's Action and its
digest; `jobs` is the job cache (look up, restore, store) with
`jobindex`, `hitrecords` and `outputs`; `deps` the dependency caches keyed on lockfiles;
`why` explains a miss.

Imports workspace, config, graph and the shared types; never executor, run, history,
features or cli: the job cache reaches a store only through `interface`.
"""
