"""The composition root: builds each data plane's adapters and services, and the processes'
entry points (the Serve application builder, the Ray / Serve bootstrap).

It stands directly under the faces (``api``, ``cli``, ``stack``, ``plugin_assets``); no domain
package imports it.
"""

from mixpeek_orchestration.platform.root import Platform as Platform

__all__ = ["Platform"]
