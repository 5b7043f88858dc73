"""Build history: every run and its jobs in a SQL database (SQLAlchemy Core, Alembic).

Default: SQLite at `.conveyor/history.db`, filled from the run directories when a history
command asks (so `conveyor run` never pays for importing SQLAlchemy). With a database URL
(`CONVEYOR_DB_URL` or `history.url`), typically PostgreSQL shared by CI runners, each run
records itself when it ends.
"""
