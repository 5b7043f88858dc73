"""A job made ready for a remote worker: the Action it executes (its Command and input
root) and where each input's bytes are, from the job's request and cache key.

What a worker sees of the workspace is what the job declares: the files its `inputs:`
select (the files its cache key covers) and the outputs of the jobs it needs. Its
environment is the job's, without what belongs to this machine: the baseline taken
from the caller's environment (PATH, HOME, LANG...: the worker has its own) unless the
pipeline declares it, the workspace's path, the run directory's values file and the run
id (a worker gives its own workspace and values file; a run id in the Command would
make every run's action a new one, never served from the server's cache).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from conveyor.cache.jobs import JobCache
from conveyor.cache.keys import BuiltAction, platform_facts, remote_action
from conveyor.executor.environment import BASELINE_ENV
from conveyor.executor.interface import ExecRequest, RemoteSpec
from conveyor.model import Digest, Job, OutputFile, Pipeline
from conveyor.workspace.files import FileInfo

MACHINE_VARIABLES = frozenset({"CONVEYOR_WORKSPACE", "CONVEYOR_OUTPUT", "CONVEYOR_RUN_ID"})
"""Set by the worker (the first two) or left out (the run id): see the docstring."""


def remote_environment(job: Job, pipeline: Pipeline, env: Mapping[str, str]) -> dict[str, str]:
    """The job's environment as a worker gets it (see the module's docstring)."""
    declared = {*(k for k, _v in pipeline.env), *(k for k, _v in job.env), *job.pass_env}
    return {
        name: value
        for name, value in env.items()
        if name not in MACHINE_VARIABLES
        and (name in declared or not (name in BASELINE_ENV or name.startswith("LC_")))
    }


def remote_spec(
    job: Job,
    pipeline: Pipeline,
    request: ExecRequest,
    built: BuiltAction,
    jobcache: JobCache,
    upstream: Sequence[OutputFile],
) -> RemoteSpec:
    """What the remote executor needs to run `request` on a worker."""
    infos: dict[str, FileInfo] = dict(jobcache.input_infos(built.paths))
    for output in upstream:
        if output.path in infos:
            continue
        full = os.path.join(pipeline.root, output.path)
        try:
            executable = bool(os.stat(full).st_mode & 0o100)
        except FileNotFoundError:  # gone since its job ran: the job sees it missing
            continue
        infos[output.path] = FileInfo(Digest(output.sha256, output.size), executable)
    platform = {**platform_facts(), **dict(job.platform)}
    action, blobs = remote_action(
        argv=request.argv,
        env=remote_environment(job, pipeline, request.env),
        working_directory=job.dir,
        output_paths=job.outputs,
        platform=sorted(platform.items()),
        files=infos,
        timeout=job.timeout,
    )
    files = {info.digest: os.path.join(pipeline.root, path) for path, info in infos.items()}
    return RemoteSpec(
        root=pipeline.root,
        action=action,
        blobs=blobs,
        files=files,
        values_file=request.env.get("CONVEYOR_OUTPUT"),
    )
