"""Shared by the export tests: the Prometheus text format, parsed; a real OTLP/HTTP
receiver."""

from __future__ import annotations

import base64
import gzip
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )


def metric_families(text: str) -> dict[str, Any]:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def sample_value(families: dict[str, Any], name: str, sample: str, **labels: str) -> float:
    for s in families[name].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no {sample} {labels}")


# -- a real OTLP/HTTP receiver on 127.0.0.1 ------------------------------------------------


@dataclass
class Received:
    """One request the collector took: its path, headers, and the body decoded with
    opentelemetry-proto's ExportTraceServiceRequest (from protobuf or OTLP's JSON)."""

    path: str
    headers: dict[str, str]
    request: ExportTraceServiceRequest
    at: float
    """When it arrived (time.time())."""


@dataclass
class Collector:
    """An OTLP/HTTP traces receiver: records each request and answers with `status`,
    `body` and `content_type` (by default 200 and an empty ExportTraceServiceResponse)."""

    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 200
    body: bytes = b""
    content_type: str = "application/x-protobuf"


def _decode(body: bytes, headers: dict[str, str]) -> ExportTraceServiceRequest:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    message = ExportTraceServiceRequest()
    if headers["content-type"] == "application/x-protobuf":
        message.ParseFromString(body)
        return message
    assert headers["content-type"] == "application/json", headers
    # OTLP's JSON has hex ids where protobuf's JSON mapping has base64: as a collector
    # does, turn them back before parsing.
    doc = json.loads(body)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    json_format.ParseDict(doc, message)
    return message


@pytest.fixture
def collector() -> Iterator[Collector]:
    state = Collector(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = _decode(body, headers)
            state.received.append(Received(self.path, headers, request, time.time()))
            self.send_response(state.status)
            self.send_header("Content-Type", state.content_type)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
