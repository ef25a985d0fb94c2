"""What GPUs cost: the offer and price catalog shipped in orchestrator/data."""
