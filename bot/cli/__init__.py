"""The `vestnik` command line: one module per command."""
