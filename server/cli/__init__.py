"""The `switchyard` command line: one module per command group."""
