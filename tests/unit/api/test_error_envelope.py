"""Every error body parses in the official client's ``ErrorResponse`` and still carries this
project's ``detail``, ``code`` and structured fields."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from mixpeek.models import ErrorResponse as HostedError
from pydantic import BaseModel, ConfigDict

from mixpeek_orchestration.api.errors import install_error_handlers
from mixpeek_orchestration.client import ApiError
from mixpeek_orchestration.errors import ErrorCode, MixpeekError


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def app() -> TestClient:
    api = FastAPI()
    install_error_handlers(api)

    @api.get("/missing")
    def missing() -> None:
        raise MixpeekError(ErrorCode.NOT_FOUND, "Plugin 'x' not found", plugin_id="x", status="?")

    @api.post("/things")
    def things(body: Body) -> dict:
        return {}

    @api.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    return TestClient(api, raise_server_exceptions=False)


def test_a_platform_error_reads_in_both_worlds() -> None:
    response = app().get("/missing")
    assert response.status_code == 404
    body = response.json()
    hosted = HostedError.from_dict(body)
    assert hosted.success is False and hosted.status == 404
    assert hosted.error.type == "NotFoundError" and hosted.error.code == "not_found"
    assert hosted.error.message == "Plugin 'x' not found"
    assert hosted.error.details == {"plugin_id": "x"}  # a field never overwrites the envelope
    assert (body["detail"], body["code"], body["plugin_id"]) == (
        "Plugin 'x' not found",
        "not_found",
        "x",
    )
    ours = ApiError(404, body)  # this project's client keeps only the structured fields
    assert ours.code is ErrorCode.NOT_FOUND and ours.fields == {"plugin_id": "x"}


def test_an_unknown_key_is_refused_naming_it() -> None:
    response = app().post("/things", json={"name": "a", "colour": "red"})
    assert response.status_code == 422
    hosted = HostedError.from_dict(response.json())
    assert hosted.error.type == "ValidationError" and "colour" in hosted.error.message
    assert response.json()["errors"][0]["field"] == "colour"


def test_routing_and_unexpected_errors_use_the_same_envelope() -> None:
    client = app()
    assert HostedError.from_dict(client.get("/nowhere").json()).error.type == "NotFoundError"
    crashed = client.get("/boom").json()
    assert HostedError.from_dict(crashed).status == 500
    assert "secret internals" not in crashed["detail"]
