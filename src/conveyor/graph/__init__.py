"""The pipeline as a graph: `plan` (matrix, conditions, needs, stages into one DAG),
`formats` (DOT, Mermaid, JSON of a plan), `affected` (jobs whose inputs changed) and
`context` (branch, tag, event and commit of a run).

Imports the shared types and `workspace`; never cache, executor, history, run or cli.
"""
