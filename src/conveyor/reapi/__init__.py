"""The Remote Execution API's wire: one gRPC connection to a REAPI server (`channel`),
shared by the remote cache (cache/remote.py), remote execution (executor/remote.py) and
the worker (worker/). Below `cache` and `executor`, which may not import each other."""
