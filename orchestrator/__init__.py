"""llamadeploy's cloud-agnostic core: spec, sizing, prices, planning and the CLI."""

__version__ = "0.1.0"
