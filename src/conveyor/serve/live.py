"""A run as it goes: `/runs/{id}/events` streams its `events.jsonl` as server-sent
events while it grows (jobs queued, started and finished, log lines), with a heartbeat
comment, and ends with the run (`run_finished`, or its process gone).

Each event is sent as the run wrote it (secrets were masked before they reached the
file), under its `type` as the SSE event name, its data the JSON line; `id` is the byte
offset after it, so a browser that reconnects (Last-Event-ID) resumes where it was."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from conveyor.history.rundirs import running
from conveyor.serve.files import inside, run_dir
from conveyor.serve.state import AppState

POLL = 0.2
HEARTBEAT = 15.0
MAX_LINE = 64 * 1024
"""A log line longer than this is cut (the event log holds it whole)."""


async def _events(path: str, directory: str, offset: int) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    last_beat = time.monotonic()
    buffer = b""
    finished = False
    while True:
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read(1 << 20)
        except OSError:
            chunk = b""
        if chunk:
            buffer += chunk
            offset += len(chunk)
            *complete, buffer = buffer.split(b"\n")
            at = offset - len(buffer)
            out = []
            for raw in complete:
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(event, dict):
                    continue
                kind = str(event.get("type", "message"))
                if kind == "job_output" and len(str(event.get("line", ""))) > MAX_LINE:
                    event["line"] = str(event["line"])[:MAX_LINE] + " [cut]"
                out.append(f"event: {kind}\nid: {at}\ndata: {json.dumps(event)}\n\n")
                finished = finished or kind == "run_finished"
            if out:
                yield "".join(out)
                last_beat = time.monotonic()
            if finished:
                return
            continue
        if not running(directory):
            yield "event: run_finished\ndata: {}\n\n"
            return
        if time.monotonic() - last_beat >= HEARTBEAT:
            yield ": heartbeat\n\n"
            last_beat = time.monotonic()
        await asyncio.sleep(POLL)


async def stream(state: AppState, request: Request) -> Response:
    """The response of `/runs/{run_id}/events`."""
    run_id = request.path_params["run_id"]
    root = state.settings.root
    directory = run_dir(root, run_id)
    path = inside(root, run_id, os.path.join(directory, "events.jsonl")) if directory else None
    if directory is None or path is None:
        return PlainTextResponse(f"no run '{run_id}' in this workspace\n", status_code=404)
    offset = 0
    resume = request.headers.get("last-event-id", "")
    if resume.isdigit():
        offset = int(resume)
    return StreamingResponse(
        _events(path, directory, offset),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
