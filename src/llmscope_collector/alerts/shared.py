"""Alert rules and rule states shared by every replica in cluster mode, evaluated by one at a time.

The bucket holds the truth in two documents changed with conditional writes (control.document):
`control/alerts/rules.json` (every project's rules, written by whichever replica's API was called)
and `control/alerts/states.json` (each rule's state, written by the evaluating node). Each replica
keeps its alerts SQLite database as a local copy: the API and the evaluator read it unchanged.

Every tick (`alerts_tick_s`) a replica copies the rules in; the holder of the `alerts` lease
(control.lease) then evaluates and writes the states back, the others copy the states in. A node
that becomes the holder first copies in the states its predecessor wrote, so a firing rule stays
firing instead of paging again. Events and pending notifications stay in the database of the node
that produced them (docs/scale.md says what that means when it dies).
"""

from __future__ import annotations

import logging
import threading

import msgspec

from llmscope_collector.alerts.evaluator import Evaluator
from llmscope_collector.alerts.rules import Rule
from llmscope_collector.alerts.state import RuleState
from llmscope_collector.alerts.store import RuleStore, UnknownRule
from llmscope_collector.control.document import SharedDocument
from llmscope_collector.control.lease import Lease
from llmscope_collector.storage.objects import ObjectStore

log = logging.getLogger(__name__)

LEASE_NAME = "alerts"


class RuleSet(msgspec.Struct, kw_only=True):
    rules: list[Rule] = msgspec.field(default_factory=list)


class StateSet(msgspec.Struct, kw_only=True):
    states: dict[str, RuleState] = msgspec.field(default_factory=dict)


class SharedAlerts:
    """The cluster side of `AlertService`: rule changes go to the bucket, ticks run under the lease."""

    def __init__(self, objects: ObjectStore, *, node: str, lease_duration_s: float) -> None:
        self.node = node
        self.rules_doc = SharedDocument(objects, "alerts/rules.json", RuleSet, RuleSet, writer=node)
        self.states_doc = SharedDocument(objects, "alerts/states.json", StateSet, StateSet, writer=node)
        self.lease = Lease(objects, LEASE_NAME, holder=node, duration_s=lease_duration_s)
        self._leading = False
        self._lock = threading.Lock()  # one tick at a time (the scheduled one and a test's)
        self.evaluated_ticks = 0  # ticks this node evaluated as the holder

    # --- rule changes from the API: the bucket first, then this replica's copy ---

    def create(self, store: RuleStore, rule: Rule) -> None:
        self.rules_doc.update(lambda s: s.rules.append(rule))
        self.pull_rules(store)

    def replace(self, store: RuleStore, rule: Rule) -> None:
        def change(s: RuleSet) -> None:
            index = _index_of(s, rule.project, rule.id)
            s.rules[index] = rule

        self.rules_doc.update(change)
        self.pull_rules(store)

    def delete(self, store: RuleStore, project: str, rule_id: str) -> None:
        def change(s: RuleSet) -> None:
            del s.rules[_index_of(s, project, rule_id)]

        self.rules_doc.update(change)
        self.pull_rules(store)

    def pull_rules(self, store: RuleStore) -> None:
        store.mirror(self.rules_doc.load().rules)

    # --- the scheduled tick ---

    def tick(self, store: RuleStore, evaluator: Evaluator) -> None:
        """Copy the rules in; evaluate and publish the states if this node holds the lease, else
        copy the states in."""
        with self._lock:
            self.pull_rules(store)
            if not self.lease.held():
                self._leading = False
                store.put_states(self.states_doc.load().states)
                return
            if not self._leading:  # just became the holder: continue from the last published states
                store.put_states(self.states_doc.load().states)
                self._leading = True
            evaluator.tick()
            self.evaluated_ticks += 1
            if self.lease.held():  # lapsed meanwhile: the new holder's states win
                states = store.all_states()
                self.states_doc.update(lambda s: _replace_states(s, states))


def _index_of(rules: RuleSet, project: str, rule_id: str) -> int:
    for index, rule in enumerate(rules.rules):
        if rule.id == rule_id and rule.project == project:
            return index
    raise UnknownRule(rule_id)


def _replace_states(target: StateSet, states: dict[str, RuleState]) -> None:
    target.states = states
