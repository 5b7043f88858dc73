"""conveyor.yml written as another CI system's file: `github` (a workflow), `gitlab`
(a .gitlab-ci.yml). What both need of the pipeline is here."""

from __future__ import annotations

from typing import Any

from conveyor import model


def bases(pipeline: model.Pipeline) -> dict[str, str]:
    """Each job instance's name -> the job it is an instance of (its matrix's key)."""
    return {job.name: job.base for job in pipeline.jobs}


def has_gates(pipeline: model.Pipeline) -> bool:
    """Whether the pipeline has a gate (which becomes a last job)."""
    return bool(pipeline.gates)


def yaml_text(data: Any) -> str:
    """Data as YAML a person would write: block style, multi-line strings as `|` blocks."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    buffer = io.StringIO()
    yaml.dump(_literal(data), buffer)
    return buffer.getvalue()


def _literal(value: Any) -> Any:
    """Multi-line strings as YAML block scalars (`|`), as a person writes scripts."""
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value if value.endswith("\n") else value + "\n")
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    return value


def render(
    target: str, pipeline: model.Pipeline, raw_jobs: dict[str, dict[str, Any]], source: str
) -> str:
    """The pipeline as `target`'s file ('github' or 'gitlab'), headed by where it came
    from; a pinned action is followed by the tag it stands for."""
    from conveyor.interop.export import github, gitlab

    written = (github if target == "github" else gitlab).export(pipeline, raw_jobs)
    text = yaml_text(written)
    for pin, tag in github.PINS.items():
        text = text.replace(f"uses: {pin}\n", f"uses: {pin}  # {tag}\n")
    return f"# Written by `conveyor export {target}` from {source}.\n" + text
