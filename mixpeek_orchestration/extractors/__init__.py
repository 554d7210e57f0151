"""Built-in extractors: services plugins compose as steps, and that deploy on their own.

``import mixpeek_orchestration.extractors`` is cheap; models load when a service is constructed.
"""

from mixpeek_orchestration.extractors.registry import BUILTIN_EXTRACTORS as BUILTIN_EXTRACTORS
from mixpeek_orchestration.extractors.registry import BuiltinExtractor as BuiltinExtractor
from mixpeek_orchestration.extractors.registry import get_builtin as get_builtin

__all__ = ["BUILTIN_EXTRACTORS", "BuiltinExtractor", "get_builtin"]
