"""Models the platform provides: bundled weights (offline cache) and per-namespace models."""
