"""What of a URL may be shown: never its credentials."""

from __future__ import annotations

import urllib.parse


def without_userinfo(url: str) -> str:
    """The URL with any 'user:password@' removed from its authority (registries,
    indexes and endpoints are named in messages; their credentials never are)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
