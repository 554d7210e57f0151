"""The Dagster code location: plugin and ingestion assets, sensors, checks and resources.

Loading it is cheap: Ray, torch and the plugin SDK are imported inside asset bodies only.
"""
