"""Documents: stable ids, and a vector table per namespace and feature URI."""

from __future__ import annotations

import pytest

from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.ingest.documents import document_id, vector_table


def test_document_ids_are_stable_per_collection_object_and_blob() -> None:
    a = document_id("col_1", "obj_1", "blob_1")
    assert a == document_id("col_1", "obj_1", "blob_1")
    assert (
        len({a, document_id("col_2", "obj_1", "blob_1"), document_id("col_1", "obj_1", "blob_2")})
        == 3
    )


def test_vector_tables_are_per_namespace_and_feature_uri() -> None:
    uri = "mixpeek://my_extractor@1.0.0/my_extractor_embedding"
    assert vector_table("ns_a", uri) == "ns_a__my_extractor__1_0_0__my_extractor_embedding"
    assert vector_table("ns_a", uri) != vector_table("ns_b", uri)
    with pytest.raises(MixpeekError, match="not a feature URI"):
        vector_table("ns_a", "mixpeek://../x@1/y")
