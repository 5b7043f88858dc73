"""A browser page watched as a tester would: every console error, uncaught script error,
Content-Security-Policy refusal and dialog (an `alert` from injected HTML) is recorded;
axe-core checks the page; screenshots go to the artifacts directory."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Dialog, Page, Response

# What axe-core calls serious enough to fail the page (its impacts: minor, moderate,
# serious, critical).
FAILING_IMPACTS = ("serious", "critical")

_AXE_RUN = """async (only) => {
  const options = {resultTypes: ["violations"]};
  if (only) { options.runOnly = {type: "rule", values: only}; }
  const result = await axe.run(document, options);
  return {
    passed: result.passes.length,
    violations: result.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + n.failureSummary),
    })),
  };
}"""


class Watched:
    """One page and what went wrong on it."""

    def __init__(self, page: Page, axe_source: str, artifacts: Path) -> None:
        self.page = page
        self.axe_source = axe_source
        self.artifacts = artifacts
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location
            self.errors.append(f"{message.text} ({where.get('url')}:{where.get('lineNumber')})")

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self, url: str, status: int = 200) -> Response:
        """Go to `url`, wait for it to load, and check the status it was served with."""
        response = self.page.goto(url, wait_until="load")
        assert response is not None, url
        assert response.status == status, f"{url}: HTTP {response.status}"
        return response

    def until(self, expression: str, timeout: float = 10.0) -> None:
        """Wait for a script expression to be true. (Playwright's wait_for_function
        builds its predicate with eval, which the page's CSP refuses.)"""
        deadline = time.monotonic() + timeout
        while not self.page.evaluate(expression):
            assert time.monotonic() < deadline, f"still not true after {timeout}s: {expression}"
            self.page.wait_for_timeout(50)

    def clean(self) -> None:
        """Nothing went wrong on the page so far: no console error, no dialog."""
        assert not self.errors, "console errors:\n" + "\n".join(self.errors)
        assert not self.dialogs, f"a dialog opened (script from the data ran): {self.dialogs}"

    def axe(self, only: list[str] | None = None) -> list[dict[str, Any]]:
        """axe-core's violations on the page as it is now (of the rules `only`, or all)."""
        if not self.page.evaluate("() => typeof window.axe === 'object'"):
            # Evaluated over the DevTools protocol, which the page's CSP does not govern
            # (an injected <script> would be refused by script-src 'self').
            self.page.evaluate(self.axe_source)
        result: dict[str, Any] = self.page.evaluate(_AXE_RUN, only)
        # a page it could not read passes no rule: that is no pass
        assert result["passed"] >= (1 if only else 10), f"axe-core checked nothing: {result}"
        violations: list[dict[str, Any]] = result["violations"]
        return violations

    def accessible(self, only: list[str] | None = None) -> None:
        """axe-core finds no serious or critical violation (of the rules `only`, or all)."""
        bad = [v for v in self.axe(only) if v["impact"] in FAILING_IMPACTS]
        assert not bad, "axe-core violations:\n" + "\n".join(
            f"{v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in bad
        )

    def shot(self, name: str) -> Path:
        """A full-page screenshot kept as a test artifact; its path is printed."""
        path = self.artifacts / (re.sub(r"[^\w.-]+", "-", name).strip("-") + ".png")
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path
