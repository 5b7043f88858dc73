"""Licenses as SPDX expressions, and the license policy (`deps.licenses`) judged on them.

What packages say about their license is free text as often as not ("Apache 2.0",
"MIT License", a trove classifier, "MIT/Apache-2.0"): `normalise` turns it into an SPDX
expression with the `license-expression` library, through a table of the usual aliases
and of the license classifiers. Whatever cannot be named is kept as unknown
(`LicenseRef-...`, with the text it came from): an unknown license is reported and
fails the policy, never silently allowed.

`Policy.judge` evaluates an expression as SPDX means it: `A OR B` passes when either
branch passes, `A AND B` when both do; a branch passes when each of its terms is
allowed (when an allow-list is given) and none is denied. Deny wins over allow.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from license_expression import Licensing

MAX_BRANCHES = 256
"""Choices an expression is expanded to at most (an `(A OR B) AND (C OR D)...` chain
grows as a product); past that, the expression is judged unknown."""


@dataclass(frozen=True)
class Normalised:
    """A license as an SPDX expression: `expression` None when nothing was said;
    `unknown` the terms that are no SPDX identifier (each a `LicenseRef-...`)."""

    expression: str | None
    unknown: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        """An expression of SPDX identifiers only."""
        return self.expression is not None and not self.unknown


@functools.cache
def _licensing() -> Licensing:
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


# Trove classifiers (`License :: ...`), by their last part, to SPDX identifiers. Those
# that name no single license ("GNU General Public License (GPL)" has no version,
# "Public Domain" is no license) are left out: they come out unknown, the classifier
# shown, for an override to settle. "BSD License" names no clause count either; it is
# read as BSD-3-Clause, the most common, and the text it came from is always shown.
CLASSIFIERS: dict[str, str] = {
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "Apache Software License": "Apache-2.0",
    "BSD License": "BSD-3-Clause",
    "ISC License (ISCL)": "ISC",
    "Python Software Foundation License": "PSF-2.0",
    "Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "Eclipse Public License 1.0 (EPL-1.0)": "EPL-1.0",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "zlib/libpng License": "Zlib",
    "Universal Permissive License (UPL)": "UPL-1.0",
    "European Union Public Licence 1.1 (EUPL 1.1)": "EUPL-1.1",
    "European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
    "PostgreSQL License": "PostgreSQL",
    "Microsoft Public License": "MS-PL",
    "Python License (CNRI Python License)": "CNRI-Python",
    "Mulan Permissive Software License v2 (MulanPSL-2.0)": "MulanPSL-2.0",
    "Other/Proprietary License": "LicenseRef-Proprietary",
}

# What packages write in their license field instead of an SPDX identifier, matched
# whole, case and spacing aside.
_ALIASES: dict[str, str] = {
    "apache 2": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache2": "Apache-2.0",
    "apache license": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0",
    "asl 2.0": "Apache-2.0",
    "the mit license": "MIT",
    "mit/x11": "MIT",
    "expat": "MIT",
    "expat license": "MIT",
    "bsd": "BSD-3-Clause",
    "new bsd": "BSD-3-Clause",
    "new bsd license": "BSD-3-Clause",
    "modified bsd": "BSD-3-Clause",
    "3-clause bsd": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause",
    "bsd-3": "BSD-3-Clause",
    "bsd 3-clause license": "BSD-3-Clause",
    "simplified bsd": "BSD-2-Clause",
    "2-clause bsd": "BSD-2-Clause",
    "bsd 2-clause": "BSD-2-Clause",
    "bsd-2": "BSD-2-Clause",
    "freebsd": "BSD-2-Clause",
    "psf": "PSF-2.0",
    "psf license": "PSF-2.0",
    "mpl 2.0": "MPL-2.0",
    "mpl-2": "MPL-2.0",
    "mozilla public license 2.0": "MPL-2.0",
    "gplv2": "GPL-2.0-only",
    "gplv2+": "GPL-2.0-or-later",
    "gplv3": "GPL-3.0-only",
    "gplv3+": "GPL-3.0-or-later",
    "lgplv2+": "LGPL-2.0-or-later",
    "lgplv3": "LGPL-3.0-only",
    "lgplv3+": "LGPL-3.0-or-later",
    "agplv3": "AGPL-3.0-only",
    "agplv3+": "AGPL-3.0-or-later",
    "aflv2.1": "AFL-2.1",
    "cc0": "CC0-1.0",
    "cc0 1.0": "CC0-1.0",
    "the unlicense": "Unlicense",
    "proprietary": "LicenseRef-Proprietary",
    **{name.lower(): spdx for name, spdx in CLASSIFIERS.items()},
}


def _alias(text: str) -> str | None:
    return _ALIASES.get(" ".join(text.lower().split()))


def unknown_ref(text: str) -> str:
    """A `LicenseRef-` naming text that is no SPDX identifier ('Artistic' ->
    'LicenseRef-Artistic'); one already a LicenseRef is kept as it is."""
    if text.startswith("LicenseRef-"):
        return text
    tail = re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "unknown"
    return f"LicenseRef-{tail}"


def normalise(raw: str | None) -> Normalised:
    """The SPDX expression `raw` says ('Apache 2.0' -> 'Apache-2.0', 'MIT/Apache-2.0' ->
    'MIT OR Apache-2.0', 'mit or gpl-2.0+' -> 'MIT OR GPL-2.0-or-later'); terms that are
    no SPDX identifier become `LicenseRef-...` and are listed as unknown."""
    if raw is None or not raw.strip():
        return Normalised(None)
    text = " ".join(raw.split())
    whole = _alias(text)
    if whole is not None:
        return _parsed(whole) or Normalised(whole)
    if "/" in text and " " not in text:  # Cargo's and npm's legacy 'MIT/Apache-2.0'
        text = " OR ".join(text.split("/"))
    parsed = _parsed(text)
    if parsed is not None:
        return parsed
    ref = unknown_ref(text)
    return Normalised(ref, (ref,))


def _parsed(text: str) -> Normalised | None:
    """`text` parsed as an expression, its unknown symbols replaced by an alias where
    there is one, else by a LicenseRef; None when it does not parse."""
    from license_expression import (
        ExpressionError,
        LicenseSymbol,
    )

    licensing = _licensing()
    try:
        expr = licensing.parse(text, validate=False)
    except (ExpressionError, TypeError, ValueError):
        return None
    if expr is None:
        return Normalised(None)
    unknown: list[str] = []
    mapping: dict[Any, Any] = {}
    for key in licensing.unknown_license_keys(expr):
        alias = _alias(key)
        if alias is not None and not alias.startswith("LicenseRef-"):
            mapping[LicenseSymbol(key)] = licensing.parse(alias)
            continue
        ref = alias or unknown_ref(key)
        unknown.append(ref)
        if ref != key:
            mapping[LicenseSymbol(key)] = LicenseSymbol(ref)
    if mapping:
        expr = expr.subs(mapping)
    return Normalised(str(expr.render()), tuple(dict.fromkeys(unknown)))


def from_classifiers(classifiers: Iterable[str]) -> tuple[Normalised, str] | None:
    """The license a distribution's `License ::` classifiers name, with the
    classifiers as written: several are read as a choice (dual licensing, `OR`); None
    when there is none but the bare 'OSI Approved'."""
    named: list[str] = []
    for classifier in classifiers:
        parts = [p.strip() for p in classifier.split("::")]
        if len(parts) < 2 or parts[0] != "License":
            continue
        last = parts[-1]
        if last in ("OSI Approved", "DFSG approved"):
            continue
        named.append(last)
    if not named:
        return None
    choices: list[Normalised] = []
    for name in dict.fromkeys(named):
        spdx = CLASSIFIERS.get(name)
        if spdx is None:
            # "Eclipse Public License 2.0 (EPL-2.0)": an SPDX id in brackets.
            inner = re.search(r"\(([A-Za-z0-9.+-]+)\)$", name)
            spdx = inner.group(1) if inner and normalise(inner.group(1)).known else None
        ref = unknown_ref(name)
        choices.append(normalise(spdx) if spdx else Normalised(ref, (ref,)))
    return any_of(choices), "; ".join(dict.fromkeys(named))


def any_of(parts: Sequence[Normalised]) -> Normalised:
    """A choice among licenses (`A OR B`), each already normalised."""
    named = [p for p in parts if p.expression is not None]
    if not named:
        return Normalised(None)
    if len(named) == 1:
        return named[0]
    text = " OR ".join(f"({p.expression})" for p in named)
    unknown = tuple(dict.fromkeys(u for p in named for u in p.unknown))
    found = _parsed(text)
    return Normalised(found.expression if found else text, unknown)


class Verdict(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Judgement:
    """The policy's verdict on one license expression, and why ('GPL-3.0-only is
    denied', 'LicenseRef-Proprietary is not a known license')."""

    verdict: Verdict
    reason: str = ""
    terms: tuple[str, ...] = ()
    """The terms that made it fail (denied, not allowed, or unknown)."""


@dataclass(frozen=True)
class Policy:
    """`deps.licenses`: SPDX identifiers allowed (empty: any not denied) and denied,
    and the licenses set by hand for packages whose own metadata says none or says it
    wrong (`overrides`: package name -> expression)."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    overrides: Mapping[str, str] = field(default_factory=dict)

    @functools.cached_property
    def _allowed(self) -> frozenset[str]:
        return frozenset(_term_key(t) for t in self.allow)

    @functools.cached_property
    def _denied(self) -> frozenset[str]:
        return frozenset(_term_key(t) for t in self.deny)

    def override(self, name: str) -> str | None:
        """The expression `overrides` sets for a package (its name as the lockfile
        spells it, or normalised as its ecosystem compares names)."""
        if name in self.overrides:
            return self.overrides[name]
        folded = _fold(name)
        return next((v for k, v in self.overrides.items() if _fold(k) == folded), None)

    def judge(self, expression: str | None) -> Judgement:
        """Whether a license expression passes: some choice among its `OR` branches
        has every term allowed and none denied. A license never found, or a choice that
        fails only for want of knowing a term, is unknown, not allowed."""
        if expression is None:
            return Judgement(Verdict.UNKNOWN, "no license found", ())
        branches = _branches(expression)
        if branches is None:
            return Judgement(
                Verdict.UNKNOWN, f"{expression!r} is not an expression that can be judged"
            )
        denied: list[str] = []
        unknown: list[str] = []
        for terms in branches:
            refused = [
                t for t in terms if self._denies(t) or (not self._allows(t) and not _is_unknown(t))
            ]
            strange = [t for t in terms if _is_unknown(t) and not self._allows(t)]
            if not refused and not strange:
                return Judgement(Verdict.ALLOWED)
            denied += refused
            if not refused:
                unknown += strange  # this choice would pass if its unknown terms did
        if denied and not unknown:
            terms = tuple(dict.fromkeys(denied))
            how = [f"{t} is {'denied' if self._denies(t) else 'not allowed'}" for t in terms]
            return Judgement(Verdict.DENIED, "; ".join(how), terms)
        terms = tuple(dict.fromkeys(unknown))
        return Judgement(
            Verdict.UNKNOWN,
            f"{', '.join(terms)} {'is' if len(terms) == 1 else 'are'} not a known SPDX license",
            terms,
        )

    def _denies(self, term: str) -> bool:
        return any(key in self._denied for key in _keys(term))

    def _allows(self, term: str) -> bool:
        if not self.allow:
            return not _is_unknown(term)
        return any(key in self._allowed for key in _keys(term))


def policy_of(
    allow: Sequence[str], deny: Sequence[str], overrides: Iterable[tuple[str, str]] = ()
) -> Policy:
    """The policy as `deps.licenses` writes it."""
    return Policy(tuple(allow), tuple(deny), dict(overrides))


def _fold(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _term_key(text: str) -> str:
    """A policy's entry as a term is compared: normalised ('apache 2.0' is Apache-2.0)."""
    found = normalise(text).expression
    return (found or text).lower()


def _keys(term: str) -> tuple[str, ...]:
    """What a term is known by in the allow and deny lists: 'GPL-2.0-only WITH
    Classpath-exception-2.0' by itself and by its license (an exception only adds
    permissions, so a license allowed is allowed with one)."""
    base, sep, _exception = term.partition(" WITH ")
    return (term.lower(), base.lower()) if sep else (term.lower(),)


def _is_unknown(term: str) -> bool:
    """A term no SPDX identifier names: a LicenseRef, or a key the SPDX list lacks (an
    expression that was not normalised first)."""
    base = term.partition(" WITH ")[0]
    if base.startswith(("LicenseRef-", "DocumentRef-")):
        return True
    return base not in _licensing().known_symbols


def _branches(expression: str) -> list[tuple[str, ...]] | None:
    """The expression in disjunctive normal form: each choice, the terms it needs."""
    from license_expression import (
        ExpressionError,
        LicenseSymbol,
        LicenseWithExceptionSymbol,
    )

    licensing = _licensing()
    try:
        expr = licensing.parse(expression, validate=False)
    except (ExpressionError, TypeError, ValueError):
        return None
    if expr is None:
        return None

    def walk(node: Any) -> list[tuple[str, ...]] | None:
        if isinstance(node, LicenseWithExceptionSymbol):
            return [(f"{node.license_symbol.key} WITH {node.exception_symbol.key}",)]
        if isinstance(node, LicenseSymbol):
            return [(str(node.key),)]
        parts = [walk(arg) for arg in node.args]
        if any(p is None for p in parts):
            return None
        if isinstance(node, licensing.OR):
            out = [b for p in parts if p is not None for b in p]
        elif isinstance(node, licensing.AND):
            out = [()]
            for p in parts:
                assert p is not None
                out = [(*a, *b) for a in out for b in p]
                if len(out) > MAX_BRANCHES:
                    return None
        else:
            return None
        return out if len(out) <= MAX_BRANCHES else None

    return walk(expr)
