"""Vector store: the one adapter over LanceDB (embedded, Arrow-native, on local disk or S3).

Each table holds the vectors of one namespace and feature; rows are keyed by ``id`` so that
re-processing an object upserts instead of duplicating. Later layers (ingestion, retrieval)
decide table names and schemas; this adapter only moves Arrow data in and out.

Rows are selected with *filters*, ``{column: value}`` (equality) or ``{column: [values]}``
(membership), combined with AND: :func:`where_clause` turns them into LanceDB SQL with one
escaping rule, so no caller ever writes a SQL string.

Example:
    >>> store = VectorStore("/tmp/vectors")
    >>> store.upsert("ns_demo__embedding", [{"id": "d1", "vector": [0.1, 0.2, 0.3]}])
    >>> store.search("ns_demo__embedding", [0.1, 0.2, 0.3], k=1, filters={"id": ["d1"]})[0]["id"]
    'd1'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.health import ComponentHealth

if TYPE_CHECKING:
    import pyarrow as pa

DistanceMetric = Literal["cosine", "l2", "dot"]


def metric_of(feature: Mapping[str, Any]) -> DistanceMetric:
    """LanceDB's distance for a manifest feature's ``distance_metric`` (cosine, euclid, dot)."""
    return {"cosine": "cosine", "euclid": "l2", "dot": "dot"}.get(  # type: ignore[return-value]
        feature.get("distance_metric") or "cosine", "cosine"
    )


ANN_MIN_ROWS = 20_000
"""Below this many rows a table is searched exactly (a scan is fast and exact); at or above it
an ANN index is built once."""
ANN_PARTITION_ROWS = 6_250  # IVF partitions of about this many rows (16 at 100,000) ...
ANN_MAX_PARTITIONS = 64
ANN_NPROBES = 8  # ... of which a query searches the graphs of the 8 nearest
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
Filters = Mapping[str, Any]
"""``{column: value}`` for equality, ``{column: [values]}`` for membership; AND of them all."""


def sql_literal(value: Any) -> str:
    """A value as a LanceDB SQL literal (strings quoted, quotes doubled)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def where_clause(filters: Filters | None) -> str | None:
    """The SQL predicate of ``filters`` (``None`` when there are none); an empty membership
    list matches nothing."""
    if not filters:
        return None
    parts = []
    for column, value in filters.items():
        if not _COLUMN.fullmatch(column):
            raise MixpeekError(ErrorCode.INVALID_REQUEST, f"Invalid vector column {column!r}")
        name = f"`{column}`"  # quoted: a column may share a name with an SQL keyword
        if isinstance(value, (list, tuple, set, frozenset)):
            values = list(value)
            parts.append(
                f"{name} IN ({', '.join(sql_literal(v) for v in values)})" if values else "FALSE"
            )
        else:
            parts.append(f"{name} = {sql_literal(value)}")
    return " AND ".join(parts)


def validate_table_name(name: str) -> str:
    if not _TABLE_NAME.fullmatch(name) or ".." in name:
        raise MixpeekError(ErrorCode.INVALID_REQUEST, f"Invalid vector table name {name!r}")
    return name


class VectorStore:
    """A lazily opened LanceDB database.

    Args:
        uri: a local directory or an object-store URI (``s3://bucket/prefix``).
        storage_options: passed to LanceDB for object-store URIs (endpoint, credentials).
    """

    def __init__(self, uri: str | Path, *, storage_options: dict[str, str] | None = None) -> None:
        self.uri = str(uri)
        self.storage_options = storage_options or {}
        if "://" not in self.uri:
            Path(self.uri).mkdir(parents=True, exist_ok=True)

    @cached_property
    def db(self) -> Any:
        import lancedb

        return lancedb.connect(self.uri, storage_options=self.storage_options or None)

    def table_names(self) -> list[str]:
        names: list[str] = []
        page_token = None
        while True:
            response = self.db.list_tables(page_token=page_token)
            names.extend(response.tables)
            page_token = response.page_token
            if not page_token:
                return names

    def has_table(self, name: str) -> bool:
        return validate_table_name(name) in self.table_names()

    def upsert(
        self, table: str, rows: pa.Table | Sequence[dict[str, Any]], *, key: str = "id"
    ) -> int:
        """Insert rows, replacing those whose ``key`` already exists; returns the row count."""
        import pyarrow as pa

        data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows))
        if data.num_rows == 0:
            return 0
        if key not in data.column_names:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, f"Rows for {table!r} lack the key column {key!r}"
            )
        if not self.has_table(table):
            try:
                self.db.create_table(table, data=data)
                return data.num_rows
            except ValueError as exc:  # a concurrent writer (another batch) created it first
                if "already exists" not in str(exc):
                    raise
        (
            self.db.open_table(table)
            .merge_insert(key)
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(data)
        )
        return data.num_rows

    def search(
        self,
        table: str,
        vector: Sequence[float],
        *,
        k: int = 10,
        filters: Filters | None = None,
        metric: DistanceMetric = "cosine",
        exact: bool = False,
        columns: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Nearest rows to ``vector``, each with its ``_distance``; ``filters`` apply first.

        Uses the table's ANN index when it has one (searching the HNSW graphs of the
        ``ANN_NPROBES`` nearest partitions), unless ``exact``. ``columns`` limits what comes
        back (the vectors themselves are rarely needed).
        """
        query = (
            self.db.open_table(validate_table_name(table))
            .search(list(vector))
            .distance_type(metric)
        )
        query = query.bypass_vector_index() if exact else query.nprobes(ANN_NPROBES)
        where = where_clause(filters)
        if where:
            query = query.where(where, prefilter=True)
        if columns is not None:
            query = query.select([*columns, "_distance"])
        return query.limit(k).to_list()  # type: ignore[no-any-return]

    def has_index(self, table: str) -> bool:
        return any(
            "vector" in index.columns
            for index in self.db.open_table(validate_table_name(table)).list_indices()
        )

    def ensure_index(
        self, table: str, *, metric: DistanceMetric = "cosine", min_rows: int = ANN_MIN_ROWS
    ) -> bool:
        """Build the table's ANN index once it holds ``min_rows``; returns whether it built one.

        IVF partitions of ~``ANN_PARTITION_ROWS`` rows, each an HNSW graph over 8-bit scalar
        quantised vectors (IVF_HNSW_SQ: at 100,000 x 384 it builds ~4x faster than IVF_PQ and
        answers ~2.5x faster at a recall@10 above 0.95 without re-ranking). The
        ``collection_id`` column gets a bitmap index, so the prefilter every search applies
        costs next to nothing. Rows added later are searched exactly until the next rebuild.
        """
        from lancedb.index import Bitmap, HnswSq

        if not self.has_table(table) or self.has_index(table):
            return False
        handle = self.db.open_table(table)
        rows = handle.count_rows()
        if rows < min_rows:
            return False
        partitions = min(ANN_MAX_PARTITIONS, max(1, rows // ANN_PARTITION_ROWS))
        # with ``config``, LanceDB reads the first argument as the column to index
        handle.create_index(
            "vector", config=HnswSq(distance_type=metric, num_partitions=partitions)
        )
        if "collection_id" in handle.schema.names:
            handle.create_index("collection_id", config=Bitmap())
        return True

    def count(self, table: str, *, filters: Filters | None = None) -> int:
        if not self.has_table(table):
            return 0
        return int(self.db.open_table(table).count_rows(where_clause(filters)))

    def rows(
        self,
        table: str,
        *,
        filters: Filters | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """Every row matching ``filters`` (an empty table when the table does not exist)."""
        import pyarrow as pa

        if not self.has_table(table):
            return pa.table({})
        query = self.db.open_table(table).search()
        where = where_clause(filters)
        if where:
            query = query.where(where)
        if columns is not None:
            query = query.select(list(columns))
        return query.limit(None).to_arrow()

    def delete(self, table: str, filters: Filters) -> None:
        """Remove the rows matching ``filters`` (never every row: filters are required)."""
        where = where_clause(filters)
        if not where:
            raise MixpeekError(ErrorCode.INVALID_REQUEST, "deleting vectors needs filters")
        if self.has_table(table):
            self.db.open_table(table).delete(where)

    def drop(self, table: str) -> None:
        if self.has_table(table):
            self.db.drop_table(table)

    def health(self) -> ComponentHealth:
        tables = self.table_names()
        if "://" not in self.uri and not Path(self.uri).is_dir():
            return ComponentHealth.error(f"vector directory {self.uri} is missing")
        return ComponentHealth.ok(f"LanceDB at {self.uri}, {len(tables)} tables")
