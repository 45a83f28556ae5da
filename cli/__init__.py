"""The `amends` command."""

# The four services, in pipeline order: the one list the CLI, benchmarks and tests use.
SERVICES = ("ingest", "classify", "route", "followup")
