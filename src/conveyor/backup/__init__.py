"""Backups of everything Conveyor keeps for a workspace (`conveyor backup`), in a
repository shaped like restic's: content-defined chunks packed into content-addressed
pack files, an index of where each chunk is, and one snapshot record per backup,
written last, so a backup that dies part way is never listed.

Modules: `crypto` (the repository key, sealing, chunk ids), `backend` (a directory or an
S3 bucket), `repository` (chunks, packs, indexes, snapshots), `sources` (what a
workspace's backup holds: pipeline files, history, run directories, artifacts, the
cache's index), `create`, `restore`, `verify`, `prune`.
"""
