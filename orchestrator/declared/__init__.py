"""The declared deployment: the spec's models, the YAML they are read from with line numbers, secret references, and reading a stack file."""
