"""Executors run one job attempt somewhere: `interface` (the request and result every
caller uses), `local` (a process group here, with `watchdog`), `masking` (secrets out of
every byte a job prints). A remote executor plugs in beside `local`.

Imports the shared types only; never cache, run, features or cli.
"""
