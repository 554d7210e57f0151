"""Batch processing: the step runner shared by `mixpeek plugin test` and Ray Data ingestion."""
