"""The `llamadeploy` command: thin click commands over the orchestrator, one module per kind of work."""

from orchestrator.cli.app import cli, main

__all__ = ["cli", "main"]
