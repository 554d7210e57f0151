"""The code location's definitions as a function of the platform's state: keys and groups per
namespace, edges bucket -> collection <- plugin version, partitions per collection, checks, and
the fingerprint the state sensor reloads on."""

from __future__ import annotations

from dagster import (
    AssetKey,
    DynamicPartitionsDefinition,
    SpecificPartitionsPartitionMapping,
    StaticPartitionsDefinition,
)

from plugin_assets.graph import build_definitions
from plugin_assets.keys import Keys, slug
from plugin_assets.reload import describe_change
from plugin_assets.state import (
    BucketRef,
    CollectionRef,
    NamespaceRef,
    PlatformState,
    VersionRef,
)

NS = [
    NamespaceRef("ns_a", "prod", "org_1", "Acme Inc"),
    NamespaceRef("ns_b", "prod", "org_2", "globex"),
    NamespaceRef("ns_c", "eu", "org_3", "initech"),
]
URI = "mixpeek://text@1.10.0/embedding"


def _state(extra: list[CollectionRef] | None = None) -> PlatformState:
    buckets = [
        BucketRef("shared", "ns_a", "bkt_a", "texts"),
        BucketRef("shared", "ns_b", "bkt_b", "texts"),
        BucketRef("dedicated", "ns_c", "bkt_c", "files"),
    ]
    versions = [
        VersionRef("shared", "ns_a", "text_1_10_0", "text", "1.10.0", "ab" * 32),
        VersionRef("shared", "ns_a", "text_1_9_0", "text", "1.9.0", "cd" * 32),
        VersionRef("shared", "ns_b", "text_1_0_0", "text", "1.0.0", "ef" * 32),
        VersionRef("dedicated", "ns_c", "text_1_0_0", "text", "1.0.0", "01" * 32),
    ]
    collections = [
        CollectionRef("shared", "ns_a", "col_a1", "articles", "", ("bkt_a",), "text",
                      "text_1_10_0", "1.10.0", (URI,)),
        # same slug as "articles" would collide with a name of that form: a-b / a_b
        CollectionRef("shared", "ns_a", "col_a2", "news-feed", "", ("bkt_a",), "text",
                      "text_1_9_0", "1.9.0", (URI,)),
        CollectionRef("shared", "ns_a", "col_a3", "news_feed", "", ("bkt_a",), "text",
                      "text_1_9_0", "1.9.0", (URI,)),
        CollectionRef("shared", "ns_b", "col_b1", "articles", "", ("bkt_b",), "text",
                      "text_1_0_0", "1.0.0", (URI,)),
        CollectionRef("dedicated", "ns_c", "col_c1", "docs", "", ("bkt_c",), "text",
                      "text_1_0_0", "1.0.0", (URI,)),
    ]  # fmt: skip
    return PlatformState.of(NS, buckets, versions, collections + (extra or []))


def test_every_bucket_plugin_and_collection_is_an_asset_under_its_org_and_namespace() -> None:
    defs = build_definitions(_state())
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "Acme_Inc/prod/buckets/texts",
        "Acme_Inc/prod/plugins/text",
        "Acme_Inc/prod/collections/articles",
        "Acme_Inc/prod/collections/news_feed",  # the collection named so keeps its name ...
        "Acme_Inc/prod/collections/news_feed_col_a2",  # ... "news-feed" takes its id's tail
        "globex/prod/collections/articles",  # same names, another organisation: its own key
        "initech/eu/collections/docs",
    } <= keys
    articles = graph.get(AssetKey(["Acme_Inc", "prod", "collections", "articles"]))
    assert articles.group_name == "Acme_Inc__prod"
    assert articles.tags["mixpeek/org"] == "Acme_Inc"
    docs = graph.get(AssetKey(["initech", "eu", "collections", "docs"]))
    assert docs.tags["mixpeek/plane"] == "dedicated"
    assert docs.metadata["collection_id"] == "col_c1"


def test_a_collection_reads_its_buckets_and_the_plugin_version_it_pins() -> None:
    defs = build_definitions(_state())
    graph = defs.resolve_asset_graph()
    key = AssetKey(["Acme_Inc", "prod", "collections", "news_feed_col_a2"])
    plugin = AssetKey(["Acme_Inc", "prod", "plugins", "text"])
    assert graph.get(key).parent_keys == {
        AssetKey(["Acme_Inc", "prod", "buckets", "texts"]),
        plugin,
    }
    mapping = graph.get_partition_mapping(key, plugin)
    assert isinstance(mapping, SpecificPartitionsPartitionMapping)
    assert list(mapping.partition_keys) == ["1.9.0"]
    # the plugin's versions are its partitions, in release order (1.10.0 after 1.9.0)
    partitions = graph.get(plugin).partitions_def
    assert isinstance(partitions, StaticPartitionsDefinition)
    assert partitions.get_partition_keys() == ["1.9.0", "1.10.0"]
    assert key in graph.get(plugin).child_keys


def test_each_collection_has_its_own_batches_and_its_checks() -> None:
    defs = build_definitions(_state())
    graph = defs.resolve_asset_graph()
    names = set()
    for collection_id, key in Keys(_state()).collections.items():
        partitions = graph.get(key).partitions_def
        assert isinstance(partitions, DynamicPartitionsDefinition)
        assert partitions.name == f"batches_{collection_id}"
        names.add(partitions.name)
        checks = {c.name for c in graph.get_check_keys_for_assets([key])}
        assert checks == {"vector_dimensions", "finite_values", "documents_match_blobs", "fresh"}
    assert len(names) == 5


def test_the_sensors_target_the_asset_job_and_the_rollout_is_a_job() -> None:
    defs = build_definitions(_state())
    for name in ("bucket_objects_sensor", "plugin_version_sensor"):
        assert defs.resolve_sensor_def(name).job_name == "__ASSET_JOB"
    assert defs.resolve_job_def("plugin_deployment_job") is not None
    assert defs.resolve_job_def("ray_smoke_job") is not None
    # a run of one collection's batch resolves within the implicit job of mixed partitions
    job = defs.resolve_implicit_global_asset_job_def()
    key = AssetKey(["Acme_Inc", "prod", "collections", "articles"])
    assert job.get_subset(asset_selection={key}) is not None


def test_an_unreachable_platform_still_gives_the_platform_jobs() -> None:
    defs = build_definitions(PlatformState(available=False))
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"ray_data_smoke"}
    assert defs.resolve_sensor_def("platform_state_sensor") is not None


def test_the_fingerprint_follows_what_the_definitions_draw() -> None:
    before = _state()
    assert _state().fingerprint == before.fingerprint  # the order records come in is irrelevant
    added = CollectionRef("shared", "ns_b", "col_b2", "more", "", ("bkt_b",), "text",
                          "text_1_0_0", "1.0.0", (URI,))  # fmt: skip
    after = _state([added])
    assert after.fingerprint != before.fingerprint
    assert describe_change(before, after) == "+1 collections"
    assert describe_change(after, before) == "-1 collections"
    assert PlatformState(available=False).fingerprint != PlatformState().fingerprint


def test_names_become_dagster_names() -> None:
    assert slug("my.collection-1") == "my_collection_1"
    assert slug("Acme Inc") == "Acme_Inc"
    assert slug("") == "_"
