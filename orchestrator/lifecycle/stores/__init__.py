"""The state backends behind `orchestrator.lifecycle.state`, one module per kind of store."""
