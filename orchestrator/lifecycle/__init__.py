"""Applying plans: the engine (up, move, down, status, call), the typed deployment record, the state store and progress events."""
