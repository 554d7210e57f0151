"""Realtime: plugin versions as Ray Serve applications (deployment, rollout, relay)."""
