"""Cluster mode's commit records (proto/cluster/v1/manifest.proto) and compaction of every dataset,
against the real S3 server: what a flush manifest says about each object, that readers go by the
manifests (a copy that differs is refused, a bucket from before manifests is adopted once), and
that compacting spans, trace deltas, content, late duplicate marks and scores changes no answer."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmscope_collector._proto.cluster.v1.manifest_pb2 import FlushManifest
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.storage.bucket_compaction import BucketCompactor
from llmscope_collector.storage.compaction import CompactionOptions
from llmscope_collector.storage.layout import DATASETS
from llmscope_collector.storage.manifests import FLUSH_PREFIX, LEGACY_KEY, MANIFESTS_PREFIX, ManifestIndex
from llmscope_collector.storage.mirror import BucketMirror
from llmscope_collector.storage.objects import ObjectStore, StorageUrl, parquet_bytes
from llmscope_collector.storage.schema import LLM_DUP_SCHEMA
from tests.cluster.conftest import S3Server, hold_compaction_lease
from tests.collector.durability.helpers import payload, stored_counts
from tests.collector.query.conftest import query_settings
from tests.collector.query.dataset import GenTrace, export, generate
from tests.otlp_factory import new_span_id

pytestmark = pytest.mark.cluster


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_env: S3Server) -> Iterator[EmbeddedServer]:
    settings = query_settings(tmp_path_factory, storage=s3_env.fresh_url(), collector_id="m1", lease_duration_s=6.0)
    with EmbeddedServer(settings) as server:
        yield server


def _bucket(server: EmbeddedServer) -> ObjectStore:
    return ObjectStore(StorageUrl.parse(server.settings.storage))


def _data_keys(bucket: ObjectStore) -> dict[str, int]:
    return {info.key: info.size for dataset in DATASETS for info in bucket.list(dataset + "/")}


def test_a_flush_manifest_describes_every_object_it_commits(cluster: EmbeddedServer) -> None:
    export(cluster, generate(7, 12, step_s=600))
    bucket = _bucket(cluster)
    manifests = [info.key for info in bucket.list(FLUSH_PREFIX)]
    assert manifests and all(key.startswith(f"{FLUSH_PREFIX}m1/") for key in manifests)
    named: set[str] = set()
    for key in manifests:
        manifest = FlushManifest()
        manifest.ParseFromString(bucket.get(key))
        assert manifest.collector_id == "m1" and manifest.wal_start < manifest.wal_end
        assert key.endswith(f"/{manifest.wal_start:016x}-{manifest.wal_end:016x}.pb")
        for stored in manifest.objects:
            data = bucket.get(stored.key)
            assert (stored.bytes, stored.sha256) == (len(data), hashlib.sha256(data).digest())
            assert stored.rows == pq.read_metadata(pa.BufferReader(data)).num_rows > 0
            assert stored.key.startswith(f"{stored.dataset}/project={stored.project}/date={stored.date}/")
            named.add(stored.key)
    assert named == set(_data_keys(bucket))  # every object is committed by exactly these records
    assert {key.split("/")[0] for key in named} >= {"spans", "traces", "content"}


def test_a_copy_that_differs_from_its_manifest_is_not_shown(cluster: EmbeddedServer, tmp_path: Path) -> None:
    cluster.collector.exporter.export(payload([new_span_id() for _ in range(5)]))
    cluster.collector.flush()
    bucket = _bucket(cluster)
    (span_key,) = [key for key in _data_keys(bucket) if key.startswith("spans/")]
    table = pq.read_table(pa.BufferReader(bucket.get(span_key)))
    bucket.put(span_key, parquet_bytes(table.slice(0, 2), row_group_size=100))  # replaced behind its back
    mirror = BucketMirror(bucket, tmp_path / "m")
    report = mirror.sync()
    assert report.refused == 1 and stored_counts(mirror.root) == (0, 0)


def test_a_bucket_written_before_manifests_is_adopted_once(
    tmp_path_factory: pytest.TempPathFactory, s3_env: S3Server, tmp_path: Path
) -> None:
    settings = query_settings(tmp_path_factory, storage=s3_env.fresh_url(), collector_id="old")
    with EmbeddedServer(settings) as server:
        export(server, generate(11, 8, step_s=600))
    bucket = ObjectStore(StorageUrl.parse(settings.storage))
    for info in list(bucket.list(MANIFESTS_PREFIX)):  # what a version without manifests left
        bucket.delete(info.key)
    objects = _data_keys(bucket)
    assert stored_counts(_synced(bucket, tmp_path / "unadopted")) == (0, 0)
    restarted = dataclasses.replace(settings, data_dir=settings.data_dir)  # same WAL, same id
    with EmbeddedServer(restarted) as server:
        index = server.collector.cluster.manifests if server.collector.cluster else None
        assert index is not None and set(index.shown()) == set(objects)
        assert index.adopt_legacy() == 0  # once per bucket
        rows = stored_counts(server.settings.data_dir / "bucket")
    assert rows[0] == rows[1] > 0
    assert stored_counts(_synced(bucket, tmp_path / "adopted")) == rows
    assert any(info.key == LEGACY_KEY for info in bucket.list(MANIFESTS_PREFIX))


def _synced(bucket: ObjectStore, root: Path) -> Path:
    BucketMirror(bucket, root).sync()
    return root


def _late_marked(corpus: list[GenTrace]) -> tuple[list[GenTrace], list[GenTrace]]:
    """The corpus split so that nested LLM spans arrive a flush before their parent LLM call: their
    duplicate marks are found late (the llm_dups dataset)."""
    early, rest = [], []
    for trace in corpus:
        nested = [s for s in trace.spans if not s.counted]
        early.append(dataclasses.replace(trace, spans=nested))
        rest.append(dataclasses.replace(trace, spans=[s for s in trace.spans if s.counted]))
    return [t for t in early if t.spans], rest


def _answers(server: EmbeddedServer) -> dict[str, Any]:
    """What the API serves: every trace summary and waterfall, sessions, scores."""
    with httpx.Client(base_url=server.api_url, timeout=30) as api:
        traces = api.get("/v1/traces", params={"limit": 500}).json()["traces"]
        answers: dict[str, Any] = {"traces": sorted(traces, key=lambda t: t["trace_id"])}
        for trace in answers["traces"]:
            answers[trace["trace_id"]] = api.get(f"/v1/traces/{trace['trace_id']}").json()
        answers["sessions"] = api.get("/v1/sessions", params={"limit": 500}).json()
        answers["scores"] = sorted(api.get("/v1/scores").json()["scores"], key=lambda s: s["id"])
    return answers


def _by_dataset(keys: Iterator[str] | list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key in keys:
        found.setdefault(key.split("/")[0], []).append(key.rsplit("/", 1)[1])
    return found


def test_compaction_merges_every_dataset_and_changes_no_answer(cluster: EmbeddedServer) -> None:
    corpus = generate(5, 30, step_s=1200)  # several date partitions
    early, rest = _late_marked(corpus)
    for part in (early, rest):
        for lo in range(0, len(part), 6):  # many small flushes
            export(cluster, part[lo : lo + 6])
    with httpx.Client(base_url=cluster.api_url, timeout=30) as api:
        for n, trace in enumerate(corpus[:6]):
            score = {"id": f"s{n}", "name": "quality", "value": n, "trace_id": trace.trace_id}
            assert api.post("/v1/scores", json=score).status_code == 201
            cluster.collector.flush()
        revised = {"id": "s0", "name": "quality", "value": 9, "trace_id": corpus[0].trace_id}
        assert api.post("/v1/scores", json=revised).status_code == 201  # a later row of one id
    cluster.collector.flush()
    bucket = _bucket(cluster)
    before_keys = _by_dataset(list(_data_keys(bucket)))
    assert set(before_keys) == set(DATASETS) and all(len(v) > 1 for v in before_keys.values())
    before = _answers(cluster)
    assert any(t["span_count"] > 1 for t in before["traces"]) and len(before["scores"]) == 6

    cluster.collector._publish_cursor()
    compactor = cluster.collector.compactor
    assert isinstance(compactor, BucketCompactor)
    hold_compaction_lease(cluster)
    stats = compactor.run_once()
    assert stats.errors == 0 and stats.files_in > 0
    after_keys = _by_dataset(list(_data_keys(bucket)))
    assert all(name.startswith("compact-") for names in after_keys.values() for name in names)
    assert sum(map(len, after_keys.values())) < sum(map(len, before_keys.values()))
    assert _answers(cluster) == before
    compactor.run_once()  # the next run deletes the flush manifests that name nothing any more
    assert not list(bucket.list(FLUSH_PREFIX)) and compactor.manifests_deleted > 0
    assert _answers(cluster) == before


def test_compaction_deletes_a_flush_leftover_once_its_records_are_committed(
    bucket: ObjectStore, tmp_path: Path
) -> None:
    """Objects of flushes a crash interrupted before their manifests: the one whose WAL range the
    collector's replay committed (a manifest covers it) is deleted, the others stay unseen."""
    table = pa.table({"trace_id": ["t"], "span_id": ["s"], "marked_ns": [1]}, schema=LLM_DUP_SCHEMA)
    data = parquet_bytes(table, row_group_size=10)
    partition = "llm_dups/project=p/date=2026-01-01"
    covered = f"{partition}/part-0000000000000000-0000000000000010-c9.parquet"
    ahead = f"{partition}/part-0000000000000010-0000000000000020-c9.parquet"
    other = f"{partition}/part-0000000000000000-0000000000000010-c8.parquet"  # a collector without manifests
    index = ManifestIndex(bucket)
    assert index.adopt_legacy() == 0  # a new bucket: the (empty) adoption comes before any object
    for key in (covered, ahead, other):
        assert bucket.put_new(key, data)
    assert index.put_flush(FlushManifest(collector_id="c9", wal_start=0, wal_end=0x8))
    assert index.put_flush(FlushManifest(collector_id="c9", wal_start=0x8, wal_end=0x10))  # the replay
    mirror = BucketMirror(bucket, tmp_path / "m")
    compactor = BucketCompactor(bucket, mirror, CompactionOptions(), may_run=lambda: True)
    compactor.run_once()
    assert set(_data_keys(bucket)) == {ahead, other} and compactor.leftovers_deleted == 1
    assert not mirror.manifests.shown()
