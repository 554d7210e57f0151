"""Retrieval: retrievers (stage lists over collections) and their execution."""
