"""The ASGI application: its routes, each page as HTML and the same data as JSON.

Handlers are plain functions (Starlette runs them on its thread pool, since the
history is read through SQLAlchemy's blocking engine); each reads its parameters,
calls one data function of its page area and renders the result or returns it as
JSON. Nothing here writes anything but the history's record of finished runs."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from conveyor.errors import ConveyorError
from conveyor.serve import params, views
from conveyor.serve.filters import plain
from conveyor.serve.guard import SCAN_CSP, Guard
from conveyor.serve.settings import ServeSettings
from conveyor.serve.state import AppState

HERE = os.path.dirname(os.path.abspath(__file__))
Data = Mapping[str, Any]


def _environment() -> Environment:
    from conveyor.serve import filters

    env = Environment(
        loader=FileSystemLoader(os.path.join(HERE, "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters.FILTERS)
    return env


class Pages:
    """Renders one data function as a page (HTML) or its JSON."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.env = _environment()

    def render(self, request: Request, template: str, data: Data, status: int = 200) -> Response:
        def link(**changes: object) -> str:
            query = dict(request.query_params)
            for key, value in changes.items():
                if value is None or value == "":
                    query.pop(key, None)
                else:
                    query[key] = str(value)
            return request.url.path + (f"?{urlencode(query)}" if query else "")

        html = self.env.get_template(template).render(
            request=request, link=link, query=request.query_params, **data
        )
        return HTMLResponse(html, status_code=status)

    def page(
        self, template: str, make: Callable[[AppState, Request], Data]
    ) -> tuple[Callable[[Request], Response], Callable[[Request], Response]]:
        """(the HTML handler, the JSON handler) of a page."""

        def html(request: Request) -> Response:
            try:
                data = make(self.state, request)
            except params.BadParameter as exc:
                return self.error(request, 400, exc.render())
            return self.render(request, template, data)

        def api(request: Request) -> Response:
            try:
                data = make(self.state, request)
            except params.BadParameter as exc:
                return JSONResponse({"error": exc.render()}, status_code=400)
            return JSONResponse(plain({k: v for k, v in data.items() if k != "nav"}))

        return html, api

    def error(self, request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return self.render(
            request, "error.html", {"nav": "", "status": status, "message": message}, status
        )


def create_app(settings: ServeSettings) -> Starlette:
    """The dashboard of `settings`' workspace and history."""
    state = AppState(settings)
    pages = Pages(state)
    routes: list[Route | Mount] = []
    for path, template, make in views.PAGES:
        html, api = pages.page(template, make)
        routes.append(Route(path, html, methods=["GET", "HEAD"]))
        routes.append(
            Route("/api" + (path if path != "/" else "/runs"), api, methods=["GET", "HEAD"])
        )

    def run_page(request: Request) -> Response:
        try:
            data = views.run_page(state, request)
        except views.NotFound as exc:
            return pages.error(request, 404, str(exc))
        if data.get("live") and request.url.path.startswith("/api/"):
            return JSONResponse(plain({k: v for k, v in data.items() if k != "nav"}))
        if request.url.path.startswith("/api/"):
            return JSONResponse(plain(data["view"]))
        return pages.render(request, "run.html", data)

    def log_page(request: Request) -> Response:
        try:
            data = views.log_page(state, request)
        except views.NotFound as exc:
            return pages.error(request, 404, str(exc))
        except params.BadParameter as exc:
            return pages.error(request, 400, exc.render())
        if request.url.path.startswith("/api/"):
            return JSONResponse(plain(data["log"]))
        return pages.render(request, "job_log.html", data)

    def raw_log(request: Request) -> Response:
        try:
            path = views.raw_log(state, request)
        except views.NotFound as exc:
            return pages.error(request, 404, str(exc))
        return FileResponse(path, media_type="text/plain; charset=utf-8")

    def scan(request: Request) -> Response:
        from conveyor.export import html

        try:
            record = views.recorded(state, request.path_params["run_id"])
        except views.NotFound as exc:
            return pages.error(request, 404, str(exc))
        return HTMLResponse(html.render(record), headers={"content-security-policy": SCAN_CSP})

    def trace(request: Request) -> Response:
        from conveyor.export.trace import chrome

        try:
            record = views.recorded(state, request.path_params["run_id"])
        except views.NotFound as exc:
            return pages.error(request, 404, str(exc))
        return Response(
            json.dumps(chrome(record)),
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="trace-{record.run.id}.json"'},
        )

    def metrics(request: Request) -> Response:
        from conveyor.serve.metrics import exposition

        return PlainTextResponse(
            exposition(state), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def events(request: Request) -> Response:
        from conveyor.serve.live import stream

        return await stream(state, request)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return pages.error(request, status, str(detail))

    async def user_error(request: Request, exc: Exception) -> Response:
        message = exc.render() if isinstance(exc, ConveyorError) else str(exc)
        return pages.error(request, 400, message)

    get = ["GET", "HEAD"]
    routes += [
        Route("/runs/{run_id}", run_page, methods=get),
        Route("/api/runs/{run_id}", run_page, methods=get),
        Route("/runs/{run_id}/jobs/{job:path}/log", log_page, methods=get),
        Route("/api/runs/{run_id}/jobs/{job:path}/log", log_page, methods=get),
        Route("/runs/{run_id}/jobs/{job:path}/log.txt", raw_log, methods=get),
        Route("/runs/{run_id}/events", events, methods=get),
        Route("/runs/{run_id}/scan.html", scan, methods=get),
        Route("/runs/{run_id}/trace.json", trace, methods=get),
        Route("/metrics", metrics, methods=get),
        Route("/healthz", healthz, methods=get),
        Mount("/static", StaticFiles(directory=os.path.join(HERE, "static")), name="static"),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    app = _Guarded(
        settings.token,
        routes=routes,
        exception_handlers={HTTPException: not_found, ConveyorError: user_error},
        lifespan=lifespan,
    )
    app.state.dashboard = state
    return app


class _Guarded(Starlette):
    """The app with `Guard` outermost: around Starlette's own error middleware too, so
    that even its bare 500 carries the security headers (and needs the token)."""

    def __init__(self, token: str | None, **kwargs: Any) -> None:
        self._token = token
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> Any:
        return Guard(super().build_middleware_stack(), self._token)
