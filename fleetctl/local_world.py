"""The demo's world, started for one command and stopped after it.

A moto server on 127.0.0.1 (a free port) gets what the stack would have in AWS (`demo_world`),
and a local receiver stands in for Slack, PagerDuty, the health endpoints and the pricing and
news feeds. `fleetctl demo` replays a day in it; `fleetctl invoke` runs one function in it. Each
function gets the environment the plan gives it, pointed at this world, with the world's
credentials and none of the shell's.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from catalog.model import FunctionSpec
from components.exceptions import StackSettingsError
from components.naming import member_role_name
from components.settings import FleetSettings
from components.stack_config import validated_stack_settings
from fleetctl.demo_cost_report import put_cost_report
from fleetctl.demo_world import (
    DemoWorld,
    SeededCosts,
    SeededSpotPrices,
    create_hub,
    create_member,
    serve_eks_updates,
    serve_seeded_costs,
    serve_spot_prices,
)
from fleetctl.exceptions import PlanError
from fleetctl.handler_environment import (
    deployed_environment,
    deployed_functions,
    handler_environment,
)
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, stack_file
from fleetctl.webhook_receiver import (
    FEED_PATH,
    HEALTH_PATH,
    LAMBDA_PATH,
    PRICING_PATH,
    WebhookReceiver,
)

INVOKED_FUNCTION_VARIABLES = {"SCALER_FUNCTION_NAME", "FORECASTER_FUNCTION_NAME"}
"""Variables naming a fleet function that the function invokes (the forecaster and the scaler
invoke each other and use Lambda for nothing else)."""


@dataclass(frozen=True)
class LocalWorld:
    """A running world: the moto server's resources, the receiver, each function's environment."""

    world: DemoWorld
    receiver: WebhookReceiver
    environments: dict[str, dict[str, str]]


def stack_settings(stack: str, project_dir: Path = REPO_ROOT) -> FleetSettings:
    """The settings of `Pulumi.<stack>.yaml`, as the program reads them; one PlanError if bad."""
    return settings_of(stack, read_stack_file(stack_file(stack, project_dir)))


def settings_of(stack: str, config: Mapping[str, Any]) -> FleetSettings:
    """The settings of stack `stack` from its file's `config:` mapping (`stack_config`), as the
    program reads them; one PlanError if bad."""
    document = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("lambda-fleet:")}
    try:
        return validated_stack_settings(stack, config, document)
    except StackSettingsError as error:
        raise PlanError(str(error)) from None


@contextmanager
def moto_server(hub_account_id: str) -> Iterator[str]:
    """A moto server on 127.0.0.1 whose default account is the hub, empty when it starts;
    stopped on any exit.

    moto keeps what its accounts hold in the process, not in the server: without the reset, a
    second server in one process (a second demo run from Python, or tests) would start with
    the first one's buckets and tables, and creating the world again would fail.
    """
    # moto takes its default account from MOTO_ACCOUNT_ID once, on import; left set, the variable
    # would also override the account of assumed-role credentials on every request.
    os.environ["MOTO_ACCOUNT_ID"] = hub_account_id
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - reads MOTO_ACCOUNT_ID on import

    del os.environ["MOTO_ACCOUNT_ID"]
    # The server logs every request through werkzeug; the callers print their own results.
    # Operations moto lacks (GetCostForecast) are logged there as tracebacks; the functions
    # report them in their results.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto's reset API; straight to 127.0.0.1, never through a proxy of the environment.
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(reset).close()
        yield endpoint
    finally:
        server.stop()


def demo_inventory(
    settings: FleetSettings, stack: str, receiver_url: str, dry_run: bool | None = None
) -> dict[str, Any]:
    """The stack's inventory, with health endpoints answered by the local receiver, and
    `dry_run` instead of the stack's when given.

    The stack file's endpoints are real services that the offline world cannot reach.
    """
    inventory = settings.inventory(stack).model_dump(mode="json")
    if dry_run is not None:
        inventory["dry_run"] = dry_run
    for member in inventory["members"]:
        for cluster in member["clusters"]:
            for endpoint in cluster["health_endpoints"]:
                endpoint["url"] = f"{receiver_url}{HEALTH_PATH}"
    return inventory


def function_environment(
    run: ProgramRun, spec: FunctionSpec, world: DemoWorld, receiver_url: str
) -> dict[str, str]:
    """What the plan gives `spec`, pointed at the world and the receiver, with its credentials."""
    environment = handler_environment(
        deployed_environment(run, spec),
        function=spec.name,
        region=world.region,
        endpoint_url=world.endpoint_url,
        credentials=world.hub_credentials,
    )
    environment.update(
        {
            "PAGERDUTY_EVENTS_URL": f"{receiver_url}/pagerduty",
            "AWS_ENDPOINT_URL_PRICING": f"{receiver_url}{PRICING_PATH}",
            "REPORT_FEED_URL": f"{receiver_url}{FEED_PATH}",
        }
    )
    if INVOKED_FUNCTION_VARIABLES & set(environment):
        # Its Lambda client only invokes other fleet functions, which moto would run in Docker:
        # the receiver hands each invocation to the caller of the world (the demo's workers).
        environment["AWS_ENDPOINT_URL_LAMBDA"] = f"{receiver_url}{LAMBDA_PATH}"
    return environment


@contextmanager
def local_world(
    stack: str, run: ProgramRun, now: datetime, dry_run: bool | None = None
) -> Iterator[LocalWorld]:
    """The stack's world as of `now`; its Cost Explorer bill, and the CUR export of the same
    cost, peaks on the day before `now`, its spot prices differ by instance type and zone, and
    EKS answers DescribeUpdate. `dry_run` replaces the stack's in the inventory (the forecaster
    passes it on to the scaler) when given."""
    settings = stack_settings(stack)
    with (
        WebhookReceiver() as receiver,
        moto_server(settings.hub.account_id) as endpoint,
        serve_eks_updates(),
    ):
        deployed = deployed_functions(run)
        fleet_environment: dict[str, str] = {}
        for spec in deployed:
            fleet_environment.update(deployed_environment(run, spec))
        world = create_hub(
            endpoint,
            settings,
            fleet_environment,
            demo_inventory(settings, stack, receiver.url, dry_run),
            receiver.url,
        )
        create_member(endpoint, settings, member_role_name(stack, "eks_scaler"), now)
        costs = SeededCosts(
            spike_day=now.date() - timedelta(days=1),
            hub_account_id=settings.hub.account_id,
            member_account_id=settings.members[0].account_id,
            cluster_names=tuple(
                cluster.name for member in settings.members for cluster in member.clusters
            ),
        )
        serve_seeded_costs(costs)
        put_cost_report(world, settings, costs, now.date(), fleet_environment)
        environments = {
            spec.name: function_environment(run, spec, world, receiver.url) for spec in deployed
        }
        spot_prices = SeededSpotPrices(
            places=frozenset(
                (member.account_id, region)
                for member in settings.members
                for region in member.regions
            ),
            end=now,
        )
        with serve_spot_prices(spot_prices):
            yield LocalWorld(world=world, receiver=receiver, environments=environments)
