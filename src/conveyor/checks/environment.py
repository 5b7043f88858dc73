"""Required environment variables: each must be set and non-empty before the build starts.

A deploy step that runs an hour into the pipeline and then fails on a missing
`AWS_REGION` wastes the hour; this fails first. Secret values are never shown: not
for the names the pipeline declares as secrets, nor for names that look like one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from conveyor.model import CheckResult

_SHOWN_CHARS = 40
# Names such as GITHUB_TOKEN, DB_PASSWORD or AWS_SECRET_ACCESS_KEY hold secrets even when
# the pipeline forgot to declare them, so their values are hidden too.
_SECRET_LIKE = re.compile(
    r"TOKEN|SECRET|PASSW(OR)?D|PASSPHRASE|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|AUTH(?!OR)",
    re.IGNORECASE,
)


def check_env(
    names: Sequence[str], environ: Mapping[str, str], *, secret_names: Sequence[str] = ()
) -> list[CheckResult]:
    """One CheckResult per name, in the order given."""
    secrets = set(secret_names)
    results: list[CheckResult] = []
    for name in names:
        hidden = name in secrets or bool(_SECRET_LIKE.search(name))
        value = environ.get(name)
        if value is None:
            found = "not set"
        elif not value:
            found = "set but empty"
        elif hidden:
            found = "set (value hidden)"
        else:
            found = f"set: {_shorten(value)!r}"
        ok = bool(value)
        hint = ""
        if not ok:
            where = "secrets" if hidden else "variables or secrets"
            hint = f"export {name}=... before running, and on CI add it to the CI's {where}"
        results.append(
            CheckResult(
                check=f"env {name}",
                ok=ok,
                expected=f"{name} set and non-empty",
                found=found,
                hint=hint,
            )
        )
    return results


def _shorten(value: str) -> str:
    return value if len(value) <= _SHOWN_CHARS else value[: _SHOWN_CHARS - 3] + "..."
