"""The ``mixpeek`` command line."""
