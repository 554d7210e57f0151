"""The platform's REST API (FastAPI). Routes are thin: dependencies in, a domain call, a model out."""
