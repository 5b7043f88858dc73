"""`conveyor worker` against a real BuildGrid that executes (tests/reapi.py): actions sent
by a small REAPI client of the test's own (tests/worker/client.py) run on the worker,
and what comes back is checked. Each test starts its own workers in a pool of its own
(`--platform pool=NAME`), so that no other worker takes its actions."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reapi import ExecServer, workers
from tests.worker.client import Client, finish

OK, DEADLINE_EXCEEDED = 0, 4


@pytest.fixture
def client(execution_server: ExecServer) -> Iterator[Client]:
    c = Client(execution_server.url)
    yield c
    c.close()


def pool(tmp_path: Path) -> str:
    return tmp_path.name


def test_a_job_runs_with_its_inputs_and_returns_outputs_log_and_values(
    execution_server: ExecServer, client: Client, tmp_path: Path
) -> None:
    script = """
        test -x tools/gen.sh
        test ! -x src/deep/er/data.txt
        cat src/deep/er/data.txt
        mkdir out && ./tools/gen.sh > out/gen.txt
        mkdir -p out/sub && printf x > out/sub/x.bin && chmod +x out/sub/x.bin
        ln -s gen.txt out/link
        echo "version=1.2.3" >> "$CONVEYOR_OUTPUT"
        test -f "$CONVEYOR_WORKSPACE/src/deep/er/data.txt"
        case "$CONVEYOR_OUTPUT" in "$CONVEYOR_WORKSPACE"/*) exit 9;; esac
        echo "home=$HOME"
        exit 3
    """
    action = client.action(
        script,
        files={
            "src/deep/er/data.txt": b"nested input\n",
            "tools/gen.sh": (b"#!/bin/sh\necho generated\n", True),
        },
        env={"CONVEYOR": "true"},
        outputs=("out/",),
        pool=pool(tmp_path),
    )
    with workers(execution_server, tmp_path, 1, "--platform", f"pool={pool(tmp_path)}") as (w,):
        response = client.execute(action)
        w.wait_for("exit 3")
    assert response.status.code == OK, response.status
    result = response.result
    assert result.exit_code == 3
    log = client.read(result.stdout_digest).decode()
    assert result.stdout_raw.decode() == log
    assert log.startswith("nested input\n")
    assert log.endswith("\n")
    assert f"home={os.environ['HOME']}" in log
    files = {f.path: f for f in result.output_files}
    assert sorted(files) == ["out/gen.txt", "out/sub/x.bin"]
    assert client.read(files["out/gen.txt"].digest) == b"generated\n"
    assert files["out/sub/x.bin"].is_executable
    assert not files["out/gen.txt"].is_executable
    assert [(s.path, s.target) for s in result.output_symlinks] == [("out/link", "gen.txt")]
    values = [
        json.loads(m.value)
        for m in result.execution_metadata.auxiliary_metadata
        if m.type_url == "type.googleapis.com/conveyor.Values"
    ]
    assert values == [[["version", "1.2.3"]]]
    assert result.execution_metadata.worker.startswith("conveyor-worker@")
    assert result.execution_metadata.HasField("worker_start_timestamp")


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def describe(pid: int) -> str:
    import psutil

    try:
        p = psutil.Process(pid)
        return f"{p.status()} {p.cmdline()} pgid {os.getpgid(pid)} parents {p.parents()}"
    except (psutil.Error, OSError) as exc:
        return repr(exc)


def wait_until(check: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)


def test_a_timeout_stops_the_whole_tree_and_answers_deadline_exceeded(
    execution_server: ExecServer, client: Client, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    action = client.action(
        f"sleep 60 & echo $! > {pids}; echo started; sleep 60", timeout=1, pool=pool(tmp_path)
    )
    with workers(execution_server, tmp_path, 1, "--platform", f"pool={pool(tmp_path)}"):
        response = client.execute(action)
    assert response.status.code == DEADLINE_EXCEEDED, response.status
    assert response.result.stdout_raw.decode().startswith("started\n")
    assert response.result.exit_code != 0
    assert not alive(int(pids.read_text()))


def test_cancelling_the_operation_stops_the_process(
    execution_server: ExecServer, client: Client, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    action = client.action(f"sleep 60 & echo $! > {pids}; wait", pool=pool(tmp_path))
    with workers(execution_server, tmp_path, 1, "--platform", f"pool={pool(tmp_path)}") as (w,):
        stream = client.start(action)
        name = next(stream).name
        wait_until(lambda: pids.exists() and pids.read_text().strip(), what="the job started")
        pid = int(pids.read_text())
        assert alive(pid)
        client.cancel(name)
        wait_until(lambda: not alive(pid), timeout=10, what="the job stopped")
        w.wait_for("(cancelled)")
        assert not list((tmp_path / "worker0" / "work").iterdir())  # its directory is gone


def test_a_worker_killed_mid_lease_loses_no_job(
    execution_server: ExecServer, client: Client, tmp_path: Path
) -> None:
    import psutil

    runs = tmp_path / "runs"
    action = client.action(
        f"sleep 60 & echo $! >> {runs}; sleep 2; echo finished", pool=pool(tmp_path)
    )
    with workers(execution_server, tmp_path, 2, "--platform", f"pool={pool(tmp_path)}") as ws:
        stream = client.start(action, timeout=90)
        wait_until(lambda: runs.exists() and runs.read_text().strip(), what="the job started")
        first = int(runs.read_text().split()[0])
        ancestors = {p.pid for p in psutil.Process(first).parents()}
        (victim,) = [w for w in ws if w.proc.pid in ancestors]
        (survivor,) = [w for w in ws if w is not victim]
        # executor.local tells its watchdog the job's group just after spawning it: a
        # worker killed within that instant leaves a job no one stops. Mid-lease is later.
        time.sleep(0.5)
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        response = finish(stream)
    assert response.status.code == OK, response.status
    assert response.result.exit_code == 0
    # (the `sleep 60` it leaves is stopped as a local job's would be, and said so)
    assert response.result.stdout_raw.startswith(b"finished\n")
    assert f"-{survivor.proc.pid}-" in response.result.execution_metadata.worker
    wait_until(
        lambda: not alive(first),
        timeout=10,
        what=f"the killed worker's job stopped: {describe(first)}",
    )


def test_a_lost_session_is_created_again_and_its_job_killed_and_rerun(
    execution_server: ExecServer, client: Client, tmp_path: Path
) -> None:
    # A worker frozen past the server's keepalive: the server drops its session and
    # requeues the job. Back, the worker cannot report the running job any more: it
    # kills it, creates a new session, and runs the job again.
    runs = tmp_path / "runs"
    script = f"echo $$ >> {runs}; if [ $(wc -l < {runs}) -eq 1 ]; then sleep 60; fi; echo finished"
    action = client.action(script, pool=pool(tmp_path))
    with workers(execution_server, tmp_path, 1, "--platform", f"pool={pool(tmp_path)}") as (w,):
        stream = client.start(action, timeout=90)
        wait_until(lambda: runs.exists() and runs.read_text().strip(), what="the job started")
        first = int(runs.read_text().split()[0])
        w.signal(signal.SIGSTOP)
        time.sleep(execution_server.keepalive + 2.5)
        w.signal(signal.SIGCONT)
        response = finish(stream)
        w.wait_for("session lost")
    assert response.status.code == OK, response.status
    assert response.result.stdout_raw == b"finished\n"
    assert len(runs.read_text().split()) == 2
    assert not alive(first)


def test_sigterm_drains_the_running_lease_then_exits_0(
    execution_server: ExecServer, client: Client, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    action = client.action(f"echo $$ > {pids}; sleep 1.5; echo finished", pool=pool(tmp_path))
    with workers(execution_server, tmp_path, 1, "--platform", f"pool={pool(tmp_path)}") as (w,):
        stream = client.start(action)
        wait_until(lambda: pids.exists() and pids.read_text().strip(), what="the job started")
        w.signal(signal.SIGTERM)
        response = finish(stream)
        assert w.wait(timeout=20) == 0, w.log()
    assert response.status.code == OK, response.status
    assert response.result.stdout_raw == b"finished\n"
    assert "draining" in w.log()
    assert "stopped" in w.log()


def test_a_job_writing_to_an_input_cannot_change_the_blob_cache(
    execution_server: ExecServer, client: Client, tmp_path: Path
) -> None:
    files = {"in.txt": b"original\n"}
    damage = "chmod u+w in.txt 2>/dev/null || true; echo damaged > in.txt || true; cat in.txt"
    first = client.action(damage, files=files, pool=pool(tmp_path))
    second = client.action("cat in.txt", files=files, pool=pool(tmp_path))
    with workers(execution_server, tmp_path, 1, "--platform", f"pool={pool(tmp_path)}"):
        assert client.execute(first).status.code == OK
        assert client.execute(second).result.stdout_raw == b"original\n"
    cached = [p for p in (tmp_path / "worker0" / "cache" / "blobs").rglob("*") if p.is_file()]
    assert cached
    assert all(p.read_bytes() != b"damaged\n" for p in cached)


def test_linked_inputs_are_read_only_and_a_changed_one_leaves_the_cache(
    execution_server: ExecServer, client: Client, tmp_path: Path
) -> None:
    from conveyor.cache.remote import RemoteStore
    from conveyor.model import Digest, Remote
    from conveyor.worker.materialize import BlobCache

    root = client.tree({"a/b/in.txt": b"original\n", "run.sh": (b"#!/bin/sh\n", True)})
    store = RemoteStore(Remote(execution_server.url), {}, cas_writes=True)
    try:
        cache = BlobCache(str(tmp_path / "cache"), store, link=True)
        done = cache.materialize(Digest(root.hash, root.size_bytes), str(tmp_path / "one"))
        assert (done.files, done.fetched) == (2, 2)
        linked = tmp_path / "one" / "a" / "b" / "in.txt"
        assert linked.stat().st_nlink == 2
        assert linked.stat().st_mode & 0o777 == 0o444
        assert (tmp_path / "one" / "run.sh").stat().st_mode & 0o777 == 0o555
        assert cache.check(done) == []
        # As the cache's owner (or root), a job can still write through a link: the
        # blob it changed is dropped, and fetched again for the next lease.
        linked.chmod(0o644)
        linked.write_bytes(b"damaged\n")
        assert len(cache.check(done)) == 1
        again = cache.materialize(Digest(root.hash, root.size_bytes), str(tmp_path / "two"))
        assert again.fetched == 1
        assert (tmp_path / "two" / "a" / "b" / "in.txt").read_bytes() == b"original\n"
    finally:
        store.close()


def test_two_workers_share_the_load(
    execution_server: ExecServer, client: Client, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    actions = [client.action("sleep 1; echo done", pool=pool(tmp_path)) for _ in range(3)]
    platform = ("--platform", f"pool={pool(tmp_path)}")
    with (
        workers(execution_server, tmp_path, 1, *platform) as (a,),
        workers(execution_server, tmp_path / "b", 1, "--slots", "2", *platform) as (b,),
        ThreadPoolExecutor(3) as threads,
    ):
        responses = list(threads.map(client.execute, actions))
    assert all(r.status.code == OK and r.result.stdout_raw == b"done\n" for r in responses)
    names = {r.result.execution_metadata.worker for r in responses}
    assert len(names) == 3  # one lease per slot: three slots, three bots
    assert any(f"-{a.proc.pid}-" in n for n in names)
    assert any(f"-{b.proc.pid}-" in n for n in names)


def test_bad_flags_and_an_unreachable_server_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from conveyor.cli import run_cli

    assert run_cli(["worker", "--server", "http://x"]) == 2
    assert run_cli(["worker", "--server", "grpc://127.0.0.1:1", "--platform", "nokey"]) == 2
    from tests.history.conftest import free_port

    assert run_cli(["worker", "--server", f"grpc://127.0.0.1:{free_port()}"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    assert "cannot reach" in lines[2]
