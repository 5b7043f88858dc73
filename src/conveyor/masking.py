"""Secret masking: every occurrence of a secret's value becomes `***`."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"


class Masker:
    def __init__(self, secrets: Iterable[str]) -> None:
        values: set[str] = set()
        for secret in secrets:
            # A multi-line secret (a key file) is masked line by line too, since output
            # arrives one line at a time.
            for part in [secret, *secret.splitlines()]:
                part = part.strip("\r\n")
                if part:
                    values.add(part)
        ordered = sorted(values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text
