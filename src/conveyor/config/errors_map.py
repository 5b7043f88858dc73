"""Turn pydantic's validation errors into one ConfigError a person can act on."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError, ConfigPath

if TYPE_CHECKING:
    from pydantic import ValidationError

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
}


def describe(value: Any) -> str:
    """Name a YAML value the way the user wrote it."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        short = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {short!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_OTHER_CI = {"concurrency": "resource_group"}
"""Keys of other CIs whose counterpart here is not spelt alike: GitHub's `concurrency`."""


def from_validation_error(
    exc: ValidationError, prefix: ConfigPath, schema_prefix: ConfigPath
) -> ConfigError:
    """The first error of `exc`, located under `prefix` (e.g. ('jobs', 'test'))."""
    from conveyor.config.schema import keys_of, model_at

    errors = exc.errors(include_url=False)
    # An unknown key is often a misspelt required one: report the typo, not the absence.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc: tuple[str | int, ...] = tuple(p for p in err["loc"] if not _is_union_tag(p))
    kind = err["type"]
    path = prefix + loc
    value = err.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        model = model_at(schema_prefix + loc[:-1])
        allowed = keys_of(model) if model else []
        close = [_OTHER_CI[key]] if _OTHER_CI.get(key) in allowed else []
        close = close or difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        message = f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
        hint = f"valid keys here: {', '.join(allowed)}" if allowed else None
        return ConfigError(message, path=path, at_key=True, hint=hint)
    if kind == "missing":
        key = str(loc[-1]) if loc else "?"
        return ConfigError(f"missing required key '{key}'", path=path[:-1], at_key=True)
    if kind in _EXPECTED:
        return ConfigError(f"expected {_EXPECTED[kind]}, got {describe(value)}", path=path)
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return ConfigError(f"expected {expected}, got {describe(value)}", path=path)
    if kind in ("too_short", "string_too_short"):
        return ConfigError("must not be empty", path=path)
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        ctx = err.get("ctx", {})
        bound = next(iter(ctx.values()), "?")
        words = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }
        return ConfigError(f"must be {words[kind]} {bound}, got {describe(value)}", path=path)
    if kind == "value_error":
        msg = str(err["msg"]).removeprefix("Value error, ")
        return ConfigError(msg, path=path)
    return ConfigError(f"{err['msg']}, got {describe(value)}", path=path)


def _is_union_tag(part: Any) -> bool:
    """pydantic puts the tried union member ('list[str]', 'function-before[...]') in loc."""
    return isinstance(part, str) and (
        "[" in part or part.startswith(("function-", "lax-or-strict"))
    )
