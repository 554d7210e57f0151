"""Start Ray Serve on a cluster and deploy the skeleton app and the ingestion service; run by
``mixpeek up`` as a process.

Usage: ``python -m mixpeek_orchestration.platform.bootstrap`` with the ``MIXPEEK_*`` environment
of the stack. Exits 0 once both answer.
"""

from __future__ import annotations

import sys

from mixpeek_orchestration.platform import Platform, ingest_service
from mixpeek_orchestration.settings import load_settings


def main() -> int:
    platform = Platform(load_settings())
    serve = platform.serve
    serve.deploy_skeleton()
    answer = serve.call("/skeleton", {"hello": "mixpeek"})
    print(f"serve: skeleton app answered {answer}", flush=True)
    ingest_service.deploy(platform)
    print(f"serve: ingestion service at {serve.url}{ingest_service.INGEST_ROUTE}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
