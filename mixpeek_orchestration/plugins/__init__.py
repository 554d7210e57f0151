"""Plugins: the archive gate, the security scanner, the loader, the registry and the lifecycle."""
