"""Which partitions of the state table each function reads and writes: plain data, no boto3.

Every item's partition key is a family and a key (`fleet_shared.state_table`): `LOCK#<name>`,
`IDEMPOTENCY#<scope>`, `STATE#<key>`, `ONCE#<key>`. The patterns below are IAM's (`*` any run of
characters, `?` one) over whole partition keys. The program grants each function's role the
item actions on its own patterns only, under `dynamodb:LeadingKeys` (`ForAllValues:StringLike`,
`components.function_wiring`): the reads (GetItem, Query) on `READ_WRITE` and `READ_ONLY`, the
writes (PutItem, UpdateItem, DeleteItem, and a transaction's items) on `READ_WRITE`. So a bug or
a crafted event in one function cannot take another's lock, answer its requests, or change its
saved values. The handler tests check every key a handler reads or writes against these
(`tests/handlers/iam_coverage.py`): a key built outside them fails its test.

A Scan carries no partition key, and the Service Authorization Reference lists no
`dynamodb:LeadingKeys` for it (with `ForAllValues` a request without the key would pass anyway):
the one Scan (`StateTable.keys_holding_value`) is held by `dynamodb:Attributes` and
`dynamodb:Select` to the keys and expiry of the items instead, never their data
(`catalog.functions.STATE_TABLE_KEYS_SCAN`).

One partition is shared on purpose: a node group's lock and state (`nodegroup/...`), which
eks_scaler and spot_optimizer both change under the one lock. The alert delivery claims are each
function's own (`alert_delivery/<function>`: `fleet_shared.alert_delivery`), the scaler's and
the spot optimizer's readable by the other, which delivers the notices of the scaler's changes
too; the one scope all of them shared before (`alert_delivery`) stays readable, never writable,
by every function that claims alerts, so a claim made there before the upgrade still holds
(`readable_partitions`).
"""

from __future__ import annotations

LOCKS = "LOCK#"
REQUESTS = "IDEMPOTENCY#"
STATE = "STATE#"
CLAIMS = "ONCE#"

SHARED_ALERT_DELIVERY_CLAIMS = f"{REQUESTS}alert_delivery"
"""`fleet_shared.alert_delivery.SCOPE`'s requests: every function's delivery claims before each
had its own, read by `deliver_once` for as long as a claim made there lives."""
NODE_GROUP_LOCKS = f"{LOCKS}nodegroup/*"
NODE_GROUP_STATE = f"{STATE}nodegroup/*"
"""`fleet_shared.node_group_locks`: a node group's history, last change, saved sizes, intent."""
CLUSTER_STATE = f"{STATE}cluster/*"
"""`fleet_shared.node_group_holds.cluster_key`: a cluster's hold."""
PREDICTIVE_DECISIONS = f"{STATE}predictive/*"
"""`fleet_shared.predictive_decisions.decisions_key`: the decisions, and the sizes each run asks
(`handlers/demand_forecaster/asked_sizes.py`)."""
ENDPOINT_HISTORY = f"{STATE}health_monitor/endpoint/*"
"""`fleet_shared.endpoint_history.endpoint_history_key`."""


def alert_delivery_claims(function: str) -> str:
    """`fleet_shared.alert_delivery.claim_scope(function)`'s requests."""
    return f"{SHARED_ALERT_DELIVERY_CLAIMS}/{function}"


def _own(function: str) -> tuple[str, ...]:
    """A function's own request scope and the state keys it names after itself."""
    return (f"{REQUESTS}{function}", f"{STATE}{function}/*")


READ_WRITE: dict[str, tuple[str, ...]] = {
    "eks_scaler": (
        alert_delivery_claims("eks_scaler"),
        f"{REQUESTS}eks_scaler",
        NODE_GROUP_LOCKS,
        NODE_GROUP_STATE,
        CLUSTER_STATE,
    ),
    "spot_optimizer": (
        alert_delivery_claims("spot_optimizer"),
        f"{REQUESTS}spot_interruption",
        f"{REQUESTS}spot_interruption_dry_run",
        NODE_GROUP_LOCKS,
        NODE_GROUP_STATE,
        f"{CLAIMS}spot-fallback/*",
        f"{STATE}spot-analysis/*",
        f"{STATE}spot-interruptions/*",
        f"{STATE}spot_optimizer/*",
    ),
    "demand_forecaster": (
        f"{STATE}demand_forecaster/*",
        f"{STATE}forecast/*",
        PREDICTIVE_DECISIONS,
    ),
    "cost_analyzer": (alert_delivery_claims("cost_analyzer"),),
    "anomaly_detector": (alert_delivery_claims("anomaly_detector"), f"{STATE}anomaly/*"),
    "health_monitor": (alert_delivery_claims("health_monitor"), f"{STATE}health_monitor/*"),
    "change_validator": (
        alert_delivery_claims("change_validator"),
        *_own("change_validator"),
        f"{LOCKS}change_validator/*",
    ),
    "security_scanner": (
        alert_delivery_claims("security_scanner"),
        f"{REQUESTS}security_scanner_event",
        f"{STATE}security_scanner/*",
    ),
    "notification_router": (
        f"{REQUESTS}notification_router",
        f"{REQUESTS}notification_router/*",
        f"{STATE}notification_router/*",
    ),
    "cleanup_manager": (alert_delivery_claims("cleanup_manager"), f"{STATE}cleanup_manager/*"),
    "backup_scheduler": (alert_delivery_claims("backup_scheduler"), *_own("backup_scheduler")),
    "report_fetcher": (f"{REQUESTS}report_fetcher",),
    "report_processor": (f"{REQUESTS}report_processor", f"{LOCKS}report_processor/*"),
    "report_generator": (
        f"{REQUESTS}report_generator",
        f"{LOCKS}report_generator/*",
        f"{CLAIMS}report_generator/*",
    ),
    "performance_analyzer": (
        alert_delivery_claims("performance_analyzer"),
        f"{LOCKS}performance/*",
        f"{STATE}performance/*",
    ),
    "scaling_optimizer": (),
}
"""Partitions each function reads and writes."""

READ_ONLY: dict[str, tuple[str, ...]] = {
    # The forecaster's predictive decisions, which the scaler follows; the spot optimizer's
    # delivery claims, since either one delivers a scaler change's notice
    # (`fleet_shared.change_intents.NOTICE_DELIVERERS`).
    "eks_scaler": (PREDICTIVE_DECISIONS, alert_delivery_claims("spot_optimizer")),
    # A cluster's hold, which the on-demand fallback honours; the scaler's delivery claims.
    "spot_optimizer": (CLUSTER_STATE, alert_delivery_claims("eks_scaler")),
    # The baseline of a change: the health monitor's endpoint results, the scaler's changes.
    "change_validator": (ENDPOINT_HISTORY, NODE_GROUP_STATE),
    # The scaler's change history, the evidence of its recommendations.
    "scaling_optimizer": (NODE_GROUP_STATE,),
}
"""Partitions a function reads but another one writes."""


def readable_partitions(function: str) -> tuple[str, ...]:
    """The partition key patterns `function` may read (GetItem, Query): a function that claims
    alerts reads the claims every function made under one scope before (`alert_delivery`)."""
    writes = READ_WRITE[function]
    shared_claims = (
        (SHARED_ALERT_DELIVERY_CLAIMS,) if alert_delivery_claims(function) in writes else ()
    )
    return (*writes, *READ_ONLY.get(function, ()), *shared_claims)


def writable_partitions(function: str) -> tuple[str, ...]:
    """The partition key patterns `function` may write (PutItem, UpdateItem, DeleteItem)."""
    return READ_WRITE[function]
