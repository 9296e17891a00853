"""What replicas share besides the data (cluster mode, docs/scale.md "Shared control state").

Projects and API keys: `control/auth.json`, the same document the embedded default keeps in
`auth/projects.json`, changed with conditional writes by any replica's admin API and re-read by
every replica each `control_refresh_s`. Alert rules and states: alerts.shared, evaluated by the
holder of the `alerts` lease. Compaction of span objects: storage.bucket_compaction, run by the
holder of the `compaction` lease.
"""

from __future__ import annotations

import secrets
import socket

from llmscope_collector.alerts.shared import SharedAlerts
from llmscope_collector.auth.store import AuthStore, StoreFile
from llmscope_collector.control.document import Refresher, SharedDocument
from llmscope_collector.control.lease import Lease
from llmscope_collector.settings import Settings
from llmscope_collector.storage.objects import ObjectStore

AUTH_DOCUMENT = "auth.json"


def node_name() -> str:
    """This process among the replicas (lease holder, document writer): host name + a random part,
    so a restarted process is a new holder and never mistakes its predecessor's lease for its own."""
    return f"{socket.gethostname()[:40]}-{secrets.token_hex(4)}"


class SharedControl:
    def __init__(self, objects: ObjectStore, settings: Settings, *, node: str | None = None) -> None:
        self.node = node or node_name()
        self.auth_document = SharedDocument(objects, AUTH_DOCUMENT, StoreFile, StoreFile, writer=self.node)
        self.auth = AuthStore(backend=self.auth_document)
        self._auth_refresh = Refresher("auth-refresh", settings.control_refresh_s, self.auth.reload)
        self.alerts = SharedAlerts(objects, node=self.node, lease_duration_s=settings.lease_duration_s)
        self.compaction_lease = Lease(objects, "compaction", holder=self.node, duration_s=settings.lease_duration_s)

    def start(self) -> None:
        self._auth_refresh.start()
        self.compaction_lease.start()

    def stop(self) -> None:
        self._auth_refresh.stop()
        self.compaction_lease.stop(release=True)
