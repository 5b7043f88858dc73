"""What Conveyor writes for other tools: `prometheus` (metrics), `grafana` (a dashboard),
`trace` (OpenTelemetry-shaped spans), `html` (the build scan), `handoff` (CI step outputs)
and `codequality` (GitLab Code Quality).

Features layer: may import history, insights' siblings below it and the shared types;
never run, cli or web.
"""
