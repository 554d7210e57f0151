"""Request dependencies, as ``Annotated`` aliases routes can declare."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mixpeek_orchestration.platform import Platform


def get_platform(request: Request) -> Platform:
    return request.app.state.platform  # type: ignore[no-any-return]


PlatformDep = Annotated[Platform, Depends(get_platform)]
