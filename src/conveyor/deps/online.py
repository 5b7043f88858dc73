"""The OSV API as an audit's source (`conveyor deps audit --online`): `POST
{base}/v1/querybatch` with every component's name, ecosystem and version (1,000 queries
a request, pages followed), then `GET {base}/v1/vulns/{id}` for each advisory named,
whose ranges the audit matches as it matches the offline database's (and from which the
fix is computed). The base URL is $CONVEYOR_OSV_URL, else the OSV project's public API.
Any failure (unreachable, a timeout, an HTTP error, a body that is not the API's) is one
`OnlineError` saying what and where."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conveyor import __version__
from conveyor.deps.audit import Matches
from conveyor.deps.components import Component
from conveyor.deps.osv import RecordError, packages, parse_record
from conveyor.deps.versions import package_key

DEFAULT_URL = "https://api.osv.dev"
BATCH = 1000
"""Queries per querybatch request (the API's limit)."""
_MAX_PAGES = 50


class OnlineError(Exception):
    """The OSV API could not be asked: one line, with the URL."""


def base_url(environ: Mapping[str, str]) -> str:
    """$CONVEYOR_OSV_URL, else the public API."""
    return (environ.get("CONVEYOR_OSV_URL") or DEFAULT_URL).rstrip("/")


class OnlineSource:
    """Advisories from the OSV API (every ecosystem it knows)."""

    def __init__(self, base: str, timeout: float = 30.0) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self._records: dict[str, Any] = {}

    @property
    def ecosystems(self) -> frozenset[str] | None:
        return None

    def find(self, ecosystem: str, components: Sequence[Component]) -> Matches:
        pinned = [c for c in components if c.version is not None]
        ids_of: dict[int, set[str]] = {}
        for start in range(0, len(pinned), BATCH):
            chunk = pinned[start : start + BATCH]
            for i, ids in enumerate(self._query(ecosystem, chunk)):
                ids_of[start + i] = ids
        wanted = sorted({i for ids in ids_of.values() for i in ids} - set(self._records))
        if wanted:
            with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
                for ident, record in zip(wanted, pool.map(self._vuln, wanted), strict=True):
                    self._records[ident] = record
        found: Matches = {}
        for i, c in enumerate(pinned):
            key = package_key(ecosystem, c.name)
            listed = found.setdefault(key, [])
            for ident in sorted(ids_of.get(i, ())):
                data = self._records[ident]
                try:
                    advisory = parse_record(data, affected=False)
                except RecordError as exc:
                    raise OnlineError(f"{self.base}/v1/vulns/{ident}: {exc}") from None
                if advisory.withdrawn is not None or any(a.id == ident for a, _ in listed):
                    continue
                for eco, _name, named, entry in packages(data):
                    if eco == ecosystem and named == key:
                        listed.append((advisory, entry))
        return found

    def _query(self, ecosystem: str, components: Sequence[Component]) -> list[set[str]]:
        """The advisory ids the API lists for each component, pages followed."""
        queries: list[dict[str, Any]] = [
            {"package": {"name": c.name, "ecosystem": ecosystem}, "version": c.version}
            for c in components
        ]
        found: list[set[str]] = [set() for _ in components]
        pending = list(range(len(queries)))
        for _page in range(_MAX_PAGES):
            body = self._call("POST", "/v1/querybatch", {"queries": [queries[i] for i in pending]})
            results = body.get("results") if isinstance(body, dict) else None
            if not isinstance(results, list) or len(results) != len(pending):
                raise OnlineError(
                    f"{self.base}/v1/querybatch: expected {len(pending)} results, "
                    f"got {len(results) if isinstance(results, list) else 'none'}"
                )
            more = []
            for i, result in zip(pending, results, strict=True):
                result = result if isinstance(result, dict) else {}
                for vuln in result.get("vulns") or []:
                    if isinstance(vuln, dict) and isinstance(vuln.get("id"), str):
                        found[i].add(vuln["id"])
                token = result.get("next_page_token")
                if isinstance(token, str) and token:
                    queries[i] = {**queries[i], "page_token": token}
                    more.append(i)
            if not more:
                return found
            pending = more
        raise OnlineError(f"{self.base}/v1/querybatch: more than {_MAX_PAGES} pages of results")

    def _vuln(self, ident: str) -> Any:
        return self._call("GET", f"/v1/vulns/{urllib.parse.quote(ident)}", None)

    def _call(self, method: str, path: str, payload: Any) -> Any:
        url = self.base + path
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"conveyor/{__version__}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise OnlineError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise OnlineError(f"{url}: cannot be reached ({exc.reason})") from None
        except TimeoutError:
            raise OnlineError(f"{url}: no answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise OnlineError(f"{url}: {exc}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise OnlineError(f"{url}: the answer is not JSON") from None
