"""The application load balancers of each account and region, listed once a run.

ELBv2 lists the load balancers of a whole region (DescribeLoadBalancers, then DescribeTags per 20
of them); a cluster's are those tagged for it. Listed per cluster, a region of ten clusters and
hundreds of load balancers was listed ten times a run, each listing another piece of the
cluster's 30 s. The first cluster of a region lists it; the others of that run (analysed at the
same time or later) wait for that listing and take their own load balancers from it, or its
error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from handlers.performance_analyzer.measurements import application_load_balancers_by_cluster


class RegionLoadBalancers:
    """The application load balancers of each (account, region) a run analyses, by cluster."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listings: dict[tuple[str, str], Future[dict[str, list[str]]]] = {}

    def of_cluster(
        self,
        account_id: str,
        region: str,
        cluster: str,
        elbv2: Callable[[], Any],
        *,
        next_page_allowed: Callable[[], bool] | None = None,
    ) -> list[str]:
        """ARNs of `cluster`'s application load balancers in ARN order, from the listing of
        `account_id`'s `region` by the client `elbv2()` gives (made only for the first cluster
        of the region). A listing that failed fails every cluster of its region with its error,
        as listing again would, at the cost of another wait each."""
        key = (account_id, region)
        with self._lock:
            listing = self._listings.get(key)
            lists = listing is None
            if listing is None:
                listing = self._listings[key] = Future()
        if lists:
            try:
                listing.set_result(
                    application_load_balancers_by_cluster(
                        elbv2(), next_page_allowed=next_page_allowed
                    )
                )
            except BaseException as error:
                # Set before it goes on, so that no other cluster of the region waits forever.
                listing.set_exception(error)
                raise
        return listing.result().get(cluster, [])
