"""ClickHouse reads the cluster-mode bucket itself (`s3()` against the real S3 server) and answers as DuckDB.

A collector in cluster mode writes the corpus to the bucket; its API's DuckDB engine answers from
its mirror of the bucket, the ClickHouse engine (chdb) from the objects, loaded with `s3()` by key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmscope_collector.query.clickhouse.client import ChdbClient
from llmscope_collector.query.clickhouse.loader import BucketSource, Loader
from llmscope_collector.query.clickhouse.store import ClickHouseStore
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.storage.bucket_compaction import BucketCompactor
from llmscope_collector.storage.objects import ObjectStore, StorageUrl
from tests.cluster.conftest import S3Server
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import export, generate
from tests.collector.query.test_engine_equivalence import Engines, _every_query

SEED, N_TRACES = 31337, 20


@pytest.fixture
def bucket_engines(tmp_path_factory: pytest.TempPathFactory, s3_env: S3Server, tmp_path: Path) -> Iterator[Engines]:
    url = s3_env.fresh_url()
    settings = dataclasses.replace(query_settings(tmp_path_factory), storage=url, collector_id="ch1")
    client = ChdbClient(tmp_path / "chdb")
    try:
        client.use("llmscope")
        with EmbeddedServer(settings) as server:
            export(server, generate(SEED, N_TRACES, step_s=300))
            storage = StorageUrl.parse(url)
            source = BucketSource(
                ObjectStore(storage),
                s3_env.endpoint,
                storage.bucket,
                storage.prefix,
                s3_env.access_key,
                s3_env.secret_key,
            )
            yield Engines(server, ClickHouseStore(client, Loader(client, source)))
    finally:
        client.close()


def test_clickhouse_over_the_bucket_answers_as_duckdb_over_the_mirror(bucket_engines: Engines) -> None:
    _every_query(bucket_engines, "default", generate(SEED, N_TRACES, step_s=300))
    loader = bucket_engines.clickhouse.loader
    assert loader.objects_loaded == len(loader.loaded) > 0
    assert all(key.split("/")[0] in ("spans", "traces", "content", "llm_dups") for key in loader.loaded)
    assert bucket_engines.check(lambda s: s.counts(traces=True))["spans"] > N_TRACES


def test_clickhouse_records_compacted_objects_without_loading_them_again(bucket_engines: Engines) -> None:
    """Compaction of every dataset under the manifests: ClickHouse, which loaded the inputs, records
    each output without loading it (its compaction manifest names the inputs) and still answers as
    DuckDB does over the mirror."""
    corpus = generate(SEED + 1, 12, step_s=300)
    for lo in range(0, len(corpus), 3):  # several flushes: several small objects per partition
        export(bucket_engines.server, corpus[lo : lo + 3])
    loader = bucket_engines.clickhouse.loader
    loader.refresh()
    collector = bucket_engines.server.collector
    collector._publish_cursor()
    compactor = collector.compactor
    assert isinstance(compactor, BucketCompactor) and collector.control is not None
    lease = collector.control.compaction_lease
    assert any(lease.held() or lease.poll() for _ in range(100)), "the only node never held the compaction lease"
    loaded = loader.objects_loaded
    assert compactor.run_once().files_in > 0
    _every_query(bucket_engines, "default", generate(SEED, N_TRACES, step_s=300) + corpus)
    assert loader.objects_loaded == loaded  # every output recorded, none loaded
    assert any("/compact-" in key for key in loader.loaded)


def test_a_session_deleted_from_the_bucket_is_gone_from_clickhouse_as_from_duckdb(bucket_engines: Engines) -> None:
    """`DELETE /v1/sessions/{id}` in cluster mode rewrites the bucket's objects (storage.bucket_deletion);
    ClickHouse, which loaded them before, applies the deletion manifest (the session's traces and orphaned
    content out of its tables), records each rewritten object without loading it, and answers every
    query as DuckDB over the mirror does."""
    corpus = generate(SEED, N_TRACES, step_s=300)
    victim = next(t.session for t in corpus if t.session)
    gone = [t for t in corpus if t.session == victim]
    loader = bucket_engines.clickhouse.loader
    loader.refresh()
    loaded = loader.objects_loaded
    server = bucket_engines.server
    with httpx.Client(base_url=server.api_url, timeout=120) as api:
        response = api.delete(f"/v1/sessions/{victim}")
    assert response.status_code == 200, response.text
    assert response.json()["traces_deleted"] == len(gone) > 0
    kept = [t for t in corpus if t.session != victim]
    _every_query(bucket_engines, "default", [*gone, *kept])  # the deleted traces: absent from both alike
    assert bucket_engines.check(lambda s: s.get_session("default", victim)) is None
    assert all(bucket_engines.check(lambda s, t=t: s.get_trace(t.trace_id, "default")) is None for t in gone)
    assert loader.deletions_applied == 1 and loader.objects_loaded == loaded  # rewrites recorded, not loaded
    assert any("/del-" in key for key in loader.loaded)
