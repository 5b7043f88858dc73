"""Content-addressed storage and the action cache: `interface` says what a store is,
`local` keeps one on this machine's disk (a remote REAPI store comes later)."""
