"""Serve config entry point for rendered manifests.

``import_path: mixpeek_orchestration.platform.serve_app:app_builder``, ``args: {extractor: NAME}``:
a RayService builds the application of an extractor's active version in this data plane, from the
``MIXPEEK_*`` settings of its Ray containers; the config's ``deployments`` entry then sets
replicas and resources.
"""

from __future__ import annotations

from typing import Any


def app_builder(args: dict[str, str]) -> Any:
    """The Serve application of extractor ``args["extractor"]``'s active version
    (``args["namespace_id"]`` narrows it to one namespace)."""
    from mixpeek_orchestration.platform.root import Platform
    from mixpeek_orchestration.plugins.fetch import plugin_spec
    from mixpeek_orchestration.serve.deployment import build_application
    from mixpeek_orchestration.serve.options import serve_options
    from mixpeek_orchestration.settings import load_settings

    platform = Platform(load_settings())
    version = platform.registry.active_by_name(
        args["extractor"], namespace_id=args.get("namespace_id")
    )
    if version is None:
        raise LookupError(
            f"no active version of a plugin named {args['extractor']!r} in this data plane"
        )
    spec = plugin_spec(version, platform.objects, platform.sandbox)
    return build_application(spec, options=serve_options(version.get("manifest", {}), "plugin"))
