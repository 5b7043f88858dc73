"""The dashboard, `conveyor serve`: the history, live runs, trends, tests, cache,
dependencies and artifacts as server-rendered pages and the same data as JSON.

`app` is the ASGI application (Starlette); `guard` keeps it read-only, behind the token,
with its security headers; one module per page area (`runs`, `run`, `logs`, `trends`,
`testcases`, `cachepage`, `deps`, `artifacts`) holds that area's data functions, typed
and free of HTTP, built on `history.queries` and `insights`; `live` streams a run's
events as server-sent events. Imports every layer below the CLI; only `cli.serve`
imports it."""
