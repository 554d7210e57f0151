"""Process management for a local stack: ``mixpeek up`` / ``down`` / ``status``."""

from mixpeek_orchestration.stack.manager import Stack as Stack
from mixpeek_orchestration.stack.state import StackState as StackState

__all__ = ["Stack", "StackState"]
