"""The application load balancers of each account and region's clusters, found once a run.

A cluster's load balancers are those tagged for it, found with the Resource Groups Tagging API
for up to 20 clusters a request, then described by ARN (`fleet_shared.load_balancers`). Found per
cluster, a region of ten clusters took ten GetResources a run, each another piece of the
cluster's 30 s. The first cluster of a region finds those of every cluster the run analyses
there; the others of that run (analysed at the same time or later) wait for that finding and
take their own load balancers from it, or its error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from handlers.performance_analyzer.measurements import application_load_balancers_by_cluster


class RegionLoadBalancers:
    """The application load balancers of each (account, region) a run analyses, by cluster."""

    def __init__(self, clusters: Iterable[tuple[str, str, str]] = ()) -> None:
        """`clusters`: the run's clusters as (account id, region, cluster name), each region's
        found together."""
        self._lock = threading.Lock()
        self._clusters: dict[tuple[str, str], set[str]] = {}
        for account_id, region, cluster in clusters:
            self._clusters.setdefault((account_id, region), set()).add(cluster)
        self._listings: dict[tuple[str, str], Future[dict[str, list[str]]]] = {}

    def of_cluster(
        self,
        account_id: str,
        region: str,
        cluster: str,
        client: Callable[[str], Any],
        *,
        next_page_allowed: Callable[[], bool] | None = None,
    ) -> list[str]:
        """ARNs of `cluster`'s application load balancers in ARN order, from the finding of the
        run's clusters in `account_id`'s `region` by the clients `client(service)` gives (made
        only for the first cluster of the region; a cluster the run did not name is found
        alone). A finding that failed fails every cluster of its region with its error, as
        finding again would, at the cost of another wait each."""
        key = (account_id, region)
        with self._lock:
            clusters = self._clusters.get(key, set())
            listing = self._listings.get(key) if cluster in clusters else None
            lists = listing is None
            if listing is None:
                listing = Future()
                if cluster in clusters:
                    self._listings[key] = listing
                else:
                    clusters = {cluster}
        if lists:
            try:
                listing.set_result(
                    application_load_balancers_by_cluster(
                        client("elbv2"),
                        clusters,
                        tagging=client("resourcegroupstaggingapi"),
                        next_page_allowed=next_page_allowed,
                    )
                )
            except BaseException as error:
                # Set before it goes on, so that no other cluster of the region waits forever.
                listing.set_exception(error)
                raise
        return listing.result().get(cluster, [])
