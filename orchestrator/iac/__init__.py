"""Infrastructure as code: export to a Pulumi project and the Pulumi Automation API engine."""
