"""Executors run one job attempt somewhere: `local` (a process group here); later `remote`."""
