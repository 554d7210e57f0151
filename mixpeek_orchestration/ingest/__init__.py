"""Ingestion: buckets, objects, collections, documents, the planner and the Ray Data engine."""
