"""What the rules look for inside shell scripts, shared by the GitHub and GitLab rules:
a download piped into a shell, a dependency install, a test run, an image reference."""

from __future__ import annotations

import re

# `curl ... | sh`, `wget -qO- ... | sudo bash`, `| python3`, and the process-substitution
# forms `bash <(curl ...)` and `sh -c "$(curl ...)"`.
CURL_PIPE_SHELL = re.compile(
    r"\b(?:curl|wget)\b[^|\n;]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+\S+=\S+\s+)*"
    r"(?:ba|z|da|k|fi)?sh\b|\b(?:curl|wget)\b[^|\n;]*\|\s*(?:sudo\s+)?python3?\b"
    r"|\b(?:ba|z)?sh\s+(?:-c\s+)?[\"']?(?:<\(|\$\()\s*(?:curl|wget)\b"
)

# Package-manager commands that fetch dependencies (what a cache saves).
INSTALL = re.compile(
    r"\b(?:npm\s+(?:ci|install|i)\b|yarn(?:\s+install)?\s*(?:$|--|&&|;)|pnpm\s+(?:i|install)\b"
    r"|pip3?\s+install\b|python3?\s+-m\s+pip\s+install\b|poetry\s+install\b|pipenv\s+install\b"
    r"|uv\s+(?:sync|pip\s+install)\b|bundle\s+install\b|composer\s+install\b"
    r"|go\s+mod\s+download\b|cargo\s+(?:build|fetch)\b|mvn\b|gradlew?\s|dotnet\s+restore\b)",
    re.MULTILINE,
)

# A test run, of the usual tools.
TEST = re.compile(
    r"\b(?:pytest|tox|nox|(?:npm|yarn|pnpm)\s+(?:run\s+)?test|jest|vitest|mocha|go\s+test"
    r"|cargo\s+(?:test|nextest)|mvn\b[^\n]*\b(?:test|verify)|gradlew?\b[^\n]*\b(?:test|check)"
    r"|make\s+(?:test|check)|ctest|rspec|phpunit|dotnet\s+test|unittest|bazel\s+test)\b"
)


def image_problem(image: str) -> str | None:
    """Why an image reference is not reproducible, or None when it is pinned."""
    image = image.strip()
    if not image or "${{" in image or image.startswith("$"):
        return None  # an expression or a variable: decided elsewhere
    if "@sha256:" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return f"image '{image}' has no tag (it means :latest, whatever that is today)"
    if name.endswith(":latest"):
        return f"image '{image}' is :latest (whatever that is today)"
    return None
