"""What ``mixpeek up`` started, kept in ``<data_dir>/run/stack.json`` for ``down`` and ``status``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field


class ProcessRecord(BaseModel):
    """One background process of the stack."""

    pid: int
    create_time: float
    command: list[str]
    log: str
    leftovers: list[tuple[int, float]] = Field(default_factory=list)
    """Processes of its tree an earlier ``down`` could not stop: the next one tries again."""


class StackState(BaseModel):
    """Resolved endpoints and processes of a running local stack.

    ``env`` holds the ``MIXPEEK_*`` values every process of the stack was started with (URIs of
    the metadata server and Ray head, ports); ``processes`` maps component names to their pids.
    """

    data_dir: str
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    env: dict[str, str] = Field(default_factory=dict)
    urls: dict[str, str] = Field(default_factory=dict)
    processes: dict[str, ProcessRecord] = Field(default_factory=dict)
    ray_temp_dir: str | None = None

    @staticmethod
    def path_for(run_dir: Path) -> Path:
        return run_dir / "stack.json"

    @classmethod
    def load(cls, run_dir: Path) -> StackState | None:
        path = cls.path_for(run_dir)
        if not path.exists():
            return None
        return cls.model_validate_json(path.read_text())

    def save(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = self.path_for(run_dir)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(path)
