"""Secret masking: every occurrence of a secret's value, and of the encoded copies of it
a job commonly prints, becomes `***` (issue 10, "Secrets never leave masked form").

Besides the value itself, a secret is masked as base64 (standard and URL-safe, padded
or not, and, as GitHub's runner does, at each of the three byte alignments a value can
have inside a larger base64 blob, such as `base64("user:" + token)`), URL-encoded (as
urllib.parse.quote and quote_plus give it) and JSON-escaped (json.dumps without the
quotes). A multi-line secret (a key file) is also masked line by line, since output
arrives one line at a time.

Where two masked strings overlap (a secret that is a prefix of another, or two that
share characters), every character of each is masked: the union of all their
occurrences becomes one `***`, so no part of either leaks.

A secret shorter than MIN_SECRET_LENGTH characters is refused before a run starts
(`conveyor.run.compose.check_secrets`): masking a value that short would mask ordinary
output everywhere it occurs by chance, and its base64 forms at the shifted alignments
would be only two or three characters long.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
_URL_SAFE = str.maketrans("+/", "-_")

MIN_SECRET_LENGTH = 8
"""Characters (surrounding whitespace aside). GitLab refuses masked variables shorter
than 8 characters for the same reason: a shorter value occurs in ordinary output by
chance, and its base64 at a shifted alignment would be a few characters that occur
everywhere. From 8 characters, every encoded form masked is at least 8 long too."""


def too_short(value: str) -> bool:
    """Whether `value` is too short to be masked as a secret (see MIN_SECRET_LENGTH)."""
    return len(value.strip()) < MIN_SECRET_LENGTH


def encoded_forms(value: str) -> set[str]:
    """`value` and the encoded copies of it a job commonly prints (see the module)."""
    forms = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value),
        quote(value, safe=""),
        quote_plus(value),
    }
    data = value.encode("utf-8")
    whole = base64.b64encode(data).decode("ascii")
    b64 = {whole, whole.rstrip("=")}
    for shift in range(3):
        # The value starting `shift` bytes into a 3-byte group: encode it behind that
        # many filler bytes, then keep only the characters made of its own bits (each
        # character is 6 bits; those sharing bits with the filler before it, or with
        # whatever follows it in a larger blob, differ from one blob to the next).
        encoded = base64.b64encode(bytes(shift) + data).decode("ascii")
        first = -(-8 * shift // 6)  # ceil: the first character wholly of the value's bits
        last = 8 * (shift + len(data)) // 6  # floor: past the last such character
        b64.add(encoded[first:last])
    forms |= b64 | {f.translate(_URL_SAFE) for f in b64}
    # The value itself is always masked; a derived form only when long enough to be
    # unlikely to occur by chance (a refused short secret never gets here in a run).
    return {value} | {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Masker:
    """Masks a set of secrets in text, or in JSON-like data (every string in it)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if not secret.strip("\r\n"):
                continue
            forms |= encoded_forms(secret)
            stripped = secret.strip("\r\n")
            if stripped != secret:
                forms |= encoded_forms(stripped)
            lines = [line.strip("\r") for line in secret.splitlines()]
            if len(lines) > 1:
                # Only lines long enough to mask: a key file's "{" or "}" would mask
                # every brace of the output.
                forms |= {line for line in lines if not too_short(line)}
        forms.discard("")
        self._forms = sorted(forms, key=len, reverse=True)
        # One search tells most lines (no secret in them) apart at once: a third faster
        # than looking for each form in turn.
        self._any = re.compile("|".join(map(re.escape, self._forms))) if forms else None

    def __bool__(self) -> bool:
        return bool(self._forms)

    def mask(self, text: str) -> str:
        """`text` with every occurrence of every form of every secret as one `***` per
        run of masked characters."""
        if self._any is None or self._any.search(text) is None:
            return text
        spans: list[tuple[int, int]] = []
        for form in self._forms:
            start = text.find(form)
            while start != -1:
                spans.append((start, start + len(form)))
                # Overlapping occurrences too ("aaaa" twice in "aaaaa"): each is masked.
                start = text.find(form, start + 1)
        spans.sort()
        out: list[str] = []
        pos = 0
        cur_start, cur_end = spans[0]
        for start, end in spans[1:]:
            if start <= cur_end:  # overlapping or touching: one masked run
                cur_end = max(cur_end, end)
                continue
            out += [text[pos:cur_start], MASK]
            pos, (cur_start, cur_end) = cur_end, (start, end)
        out += [text[pos:cur_start], MASK, text[cur_end:]]
        return "".join(out)

    def mask_data(self, data: Any, *, keep: frozenset[str] = frozenset()) -> Any:
        """A copy of JSON-like `data` (dicts, lists, strings, numbers) with every string
        masked, mapping keys included; the values of keys in `keep` are left as they are
        (a fingerprint: a hash, never the secret, that a baseline must still match)."""
        if not self:
            return data
        if isinstance(data, str):
            return self.mask(data)
        if isinstance(data, dict):
            return {
                (self.mask(k) if isinstance(k, str) else k): (
                    v if k in keep else self.mask_data(v, keep=keep)
                )
                for k, v in data.items()
            }
        if isinstance(data, list | tuple):
            return [self.mask_data(v, keep=keep) for v in data]
        return data
