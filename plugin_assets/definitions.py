"""The ``Definitions`` of the ``plugin_assets`` code location (loaded by ``workspace.yaml``):
the platform's state as it is when the location loads (``plugin_assets.graph``)."""

import logging
import os

from plugin_assets.graph import build_definitions
from plugin_assets.state import PlatformState, read_state


def _state() -> PlatformState:
    from plugin_assets.resources import _control_plane

    try:
        return read_state(
            _control_plane(os.environ["MIXPEEK_DATA_DIR"], os.environ["MIXPEEK_MONGO_URI"])
        )
    except Exception as exc:  # the platform's own jobs still load; the state sensor reloads
        logging.getLogger(__name__).error("platform state unavailable, no tenant assets: %s", exc)
        return PlatformState(available=False)


defs = build_definitions(_state())
