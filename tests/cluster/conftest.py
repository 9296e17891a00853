"""The cluster tests run against a real S3 server: the Ceph RADOS Gateway `rgw.sh` starts on loopback.

`.ci/run` starts it and exports `LLMSCOPE_TEST_S3_*`; locally, run
`eval "$(tests/cluster/rgw.sh start /tmp/rgw)"` first (and `tests/cluster/rgw.sh stop /tmp/rgw` after).
Without those variables the tests skip, saying so, unless `LLMSCOPE_REQUIRE_S3` is set (CI sets it):
then they fail, so CI never passes with the S3 tests silently skipped.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator

import pytest

from llmscope_collector.server import EmbeddedServer
from llmscope_collector.storage.objects import ObjectStore, StorageUrl


@dataclasses.dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """The standard AWS variables a collector reads (no llmscope-specific credential setting)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }

    def fresh_url(self) -> str:
        """A prefix no other test uses: tests share the bucket, never their objects."""
        return f"s3://{self.bucket}/t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    endpoint = os.environ.get("LLMSCOPE_TEST_S3_ENDPOINT", "")
    if not endpoint:
        message = "no S3 server: start one with tests/cluster/rgw.sh (sets LLMSCOPE_TEST_S3_ENDPOINT)"
        if os.environ.get("LLMSCOPE_REQUIRE_S3"):
            pytest.fail(message + "; LLMSCOPE_REQUIRE_S3 is set")
        pytest.skip(message)
    return S3Server(
        endpoint,
        os.environ.get("LLMSCOPE_TEST_S3_BUCKET", "llmscope-test"),
        os.environ["LLMSCOPE_TEST_S3_ACCESS_KEY"],
        os.environ["LLMSCOPE_TEST_S3_SECRET_KEY"],
    )


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """The AWS variables set for this test's process (obstore reads them when a store is created)."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    yield s3_server


@pytest.fixture
def bucket(s3_env: S3Server) -> ObjectStore:
    """An object store on a fresh prefix of the test bucket."""
    return ObjectStore(StorageUrl.parse(s3_env.fresh_url()))


def hold_compaction_lease(server: EmbeddedServer) -> None:
    """Make this cluster node the compaction lease holder (what runs compaction and deletions)."""
    control = server.collector.control
    assert control is not None
    lease = control.compaction_lease
    for _ in range(200):
        if lease.held() or lease.poll():
            return
    raise AssertionError("this single node never held the compaction lease")
