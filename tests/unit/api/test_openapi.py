"""The OpenAPI document describes every body: it validates, each operation declares its
request and response models, and a client generated from it imports."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mixpeek_orchestration.api.app import create_app
from mixpeek_orchestration.settings import load_settings

FREE_FORM = {
    # a plugin's own output: its shape is the plugin's output_schema, not the API's
    ("post", "/v1/namespaces/{namespace_id}/plugins/{plugin_id}/realtime"),
    # a document's own fields (its metadata, as hosted: any keys at the root)
    ("patch", "/v1/collections/{collection_id}/documents/{document_id}"),
    ("put", "/v1/collections/{collection_id}/documents/{document_id}"),
    ("patch", "/v1/documents/{document_id}"),
    ("put", "/v1/documents/{document_id}"),
    # a document to check: any body, every way it would be refused named in the answer
    ("post", "/v1/collections/{collection_id}/documents/schema/validate"),
}


def openapi(tmp: Path) -> dict[str, Any]:
    return create_app(load_settings(data_dir=tmp)).openapi()  # type: ignore[no-any-return]


def undescribed(schema: dict[str, Any] | None) -> bool:
    if schema is None:
        return True
    if "$ref" in schema or "anyOf" in schema or schema.get("format") == "binary":
        return False
    if schema.get("type") == "array":
        return undescribed(schema.get("items"))
    return not schema.get("properties")


def test_the_document_validates_and_every_operation_describes_its_bodies(tmp_path: Path) -> None:
    from openapi_spec_validator import validate

    spec = openapi(tmp_path)
    validate(spec)  # type: ignore[arg-type]
    vague = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2") or (method, path) in FREE_FORM:
                    continue
                for media, content in (response.get("content") or {}).items():
                    if undescribed(content.get("schema")):
                        vague.append(f"{method.upper()} {path} {status} {media}")
            for media, content in (
                (operation.get("requestBody") or {}).get("content") or {}
            ).items():
                free = (method, path) in FREE_FORM or media == "application/zip"
                if undescribed(content.get("schema")) and not free:
                    vague.append(f"{method.upper()} {path} request {media}")
    assert not vague, "operations whose bodies the document does not describe:\n" + "\n".join(vague)


def generated_client(spec: dict[str, Any], where: Path) -> ModuleType:
    """Pydantic models generated from ``spec`` by datamodel-code-generator, imported."""
    codegen = pytest.importorskip("datamodel_code_generator")
    out = where / "generated_models.py"
    codegen.generate(
        json.dumps(spec),
        input_file_type=codegen.InputFileType.OpenAPI,
        output=out,
        output_model_type=codegen.DataModelType.PydanticV2BaseModel,
    )
    module_spec = importlib.util.spec_from_file_location("generated_models", out)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["generated_models"] = module
    module_spec.loader.exec_module(module)
    return module


def test_a_client_generated_from_the_document_has_every_model(tmp_path: Path) -> None:
    models = generated_client(openapi(tmp_path), tmp_path)
    for name in ("BucketOut", "CollectionOut", "RetrieverOut", "ExecuteOut", "TaskOut",
                 "NamespaceList", "ErrorResponse", "InferenceResponse"):  # fmt: skip
        assert hasattr(models, name), name
    error = models.ErrorResponse.model_validate(
        {"success": False, "status": 404, "detail": "x", "code": "not_found",
         "error": {"message": "x", "type": "NotFoundError", "code": "not_found"}}
    )  # fmt: skip
    assert error.status == 404
