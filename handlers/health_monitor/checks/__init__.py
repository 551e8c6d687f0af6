"""The registry of health checks: every check the monitor runs on a cluster, in order.

Adding a check means writing a module with `run(context) -> list[CheckResult]` and adding one row
here; the runner, the report, the alerts and the metrics pick it up without other changes.
"""

from __future__ import annotations

from handlers.health_monitor.checks import (
    alarms,
    capacity,
    cluster_status,
    endpoints,
    load_balancers,
    node_groups,
)
from handlers.health_monitor.checks.base import Check

CHECKS: tuple[Check, ...] = (
    # name, what it checks, the function that runs it
    Check(
        cluster_status.NAME,
        "EKS cluster status and control-plane issues",
        cluster_status.run,
    ),
    Check(node_groups.NAME, "managed node group status and health issues", node_groups.run),
    Check(capacity.NAME, "ready against desired instances of each node group", capacity.run),
    Check(alarms.NAME, "alarms in ALARM in the cluster's account and region", alarms.run),
    Check(endpoints.NAME, "HTTP health endpoints: status, latency and error rate", endpoints.run),
    Check(
        load_balancers.NAME,
        "load-balancer targets healthy vs registered, response time and 5xx rate",
        load_balancers.run,
    ),
)
