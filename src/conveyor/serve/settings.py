"""What a dashboard serves: the workspace, the history database, the token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conveyor.model import Pipeline


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeSettings:
    """The settings of one dashboard (`create_app`)."""

    root: str
    """The workspace whose run directories (logs, live runs) it reads."""
    db_url: str
    """The history database."""
    token: str | None = None
    """Required on every request when set (header or the login cookie)."""
    pipeline: Pipeline | None = None
    """The workspace's pipeline: the default of the pages shown per pipeline, its
    quarantine list and artifact store (None: the newest run's pipeline, the default
    store)."""
    ingest_every: float = 2.0
    """Seconds between two looks for runs its directories hold that the history lacks."""
