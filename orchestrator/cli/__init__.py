"""The command line: a thin shell over the library (``main(argv) -> exit code``)."""

from orchestrator.cli.main import entry, main

__all__ = ["entry", "main"]
