"""Build history: every run and its jobs in a SQL database (SQLAlchemy Core, Alembic), with
`store` (the one module that talks to the database), `schema` and `migrations`,
`record` (a run as rows), `rundirs` (run directories read into records), `retention`
and `queries` (typed rows for the CLI and the dashboard).

Default: SQLite at `.conveyor/history.db`, filled from the run directories when a history
command asks (so `conveyor run` never pays for importing SQLAlchemy). With a database URL
(`CONVEYOR_DB_URL` or `history.url`), typically PostgreSQL shared by CI runners, each run
records itself when it ends.

Imports the shared types only; never cache, executor, run, features (insights and export
read the history, not the other way round) or cli."""
