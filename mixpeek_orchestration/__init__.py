"""Mixpeek orchestration: a self-hostable platform for custom feature-extraction plugins.

Importing this package is cheap: it imports neither torch nor Ray. The public surface grows with
the SDK (``mixpeek_orchestration.sdk``); adapters live in ``storage``, ``compute`` and
``orchestration``, and the stack's process management in ``stack``.
"""

from mixpeek_orchestration.errors import ErrorCode as ErrorCode
from mixpeek_orchestration.errors import MixpeekError as MixpeekError
from mixpeek_orchestration.settings import MixpeekSettings as MixpeekSettings
from mixpeek_orchestration.settings import load_settings as load_settings

__version__ = "0.1.0"

__all__ = ["ErrorCode", "MixpeekError", "MixpeekSettings", "__version__", "load_settings"]
