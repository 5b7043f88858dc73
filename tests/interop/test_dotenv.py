"""`--secret-file`/`--env-file`: .env files as act and docker read them."""

from __future__ import annotations

import pytest

from conveyor.errors import ConfigError
from conveyor.interop.dotenv import parse
from tests.conftest import Project


def test_the_forms_of_a_dotenv_file() -> None:
    text = (
        "# a comment\n"
        "PLAIN=value # trailing comment\n"
        "export EXPORTED=yes\n"
        "SINGLE='a \\n b'\n"
        'DOUBLE="line1\\nline2 \\"q\\""\n'
        'SPANNING="first\n'
        'second"\n'
        "EMPTY=\n"
    )
    assert parse(text, ".env") == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SINGLE": "a \\n b",
        "DOUBLE": 'line1\nline2 "q"',
        "SPANNING": "first\nsecond",
        "EMPTY": "",
    }


def test_a_line_that_is_not_a_variable_is_located() -> None:
    with pytest.raises(ConfigError) as caught:
        parse("OK=1\nnot a variable\n", "s.env")
    assert (caught.value.file, caught.value.line) == ("s.env", 2)


def test_a_secret_file_gives_jobs_their_secrets_masked_and_unrecorded(project: Project) -> None:
    project.pipeline('jobs:\n  deploy:\n    secrets: [TOKEN]\n    run: echo "token=$TOKEN"\n')
    project.write("secrets.env", "TOKEN=hunter2-very-secret\n")
    project.commit()

    ran = project.run("run", "--plain", "--secret-file", "secrets.env")

    assert ran.code == 0, ran.out + ran.err
    assert "token=***" in ran.out
    assert "hunter2" not in ran.out
    for path in (project.root / ".conveyor").rglob("*"):
        if path.is_file():
            assert b"hunter2-very-secret" not in path.read_bytes(), path
