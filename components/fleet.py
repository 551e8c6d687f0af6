"""The whole fleet of one stack: accounts, networks, clusters, hub resources and functions."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from catalog.functions import FUNCTIONS
from components.bytecode import RuntimePython
from components.hub import FleetHub, FleetHubArgs
from components.member_account import MemberAccount, MemberAccountArgs
from components.network import AccountNetwork, AccountNetworkArgs
from components.providers import AccountProviders, AccountProvidersArgs
from components.settings import FleetSettings


@dataclass(frozen=True)
class FleetArgs:
    settings: FleetSettings
    stack: str
    # The interpreter that compiles the archives' bytecode (`stack_config.archive_runtime_python`).
    runtime_python: RuntimePython | None = None


class Fleet(pulumi.ComponentResource):
    """Builds every account's resources with that account's provider."""

    def __init__(
        self, name: str, args: FleetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:fleet:Fleet", name, None, opts)
        settings = args.settings
        # A function switched off in the stack file is left out everywhere: its hub resources,
        # its triggers and what it may do in members.
        functions = settings.enabled_functions(FUNCTIONS)
        self.providers = AccountProviders(
            f"{name}-accounts",
            AccountProvidersArgs(settings=settings, stack=args.stack),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.networks: dict[tuple[str, str], AccountNetwork] = {}
        for index, member in enumerate(settings.members):
            if member.network is None:
                continue  # the account creates no cluster (validated)
            # Only where a created cluster lives: a region of existing clusters alone needs no
            # network stack to read, nor a VPC and NAT gateway that nothing would use.
            for region in member.network_regions():
                self.networks[(member.account_id, region)] = AccountNetwork(
                    f"{name}-{member.name}-{region}-network",
                    AccountNetworkArgs(
                        network=member.network,
                        region=region,
                        provider=self.providers.provider(member.account_id, region),
                        stack=args.stack,
                        field=f"members[{index}].network",
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
        # The hub first: each member's event forwarding waits for the inventory object, so an
        # event a member forwards finds it listed (`EventForwardingArgs.inventory`).
        self.hub = FleetHub(
            f"{name}-hub",
            FleetHubArgs(
                settings=settings,
                stack=args.stack,
                provider=self.providers.hub,
                functions=functions,
                runtime_python=args.runtime_python,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.member_accounts: dict[str, MemberAccount] = {}
        for member in settings.members:
            self.member_accounts[member.account_id] = MemberAccount(
                f"{name}-{member.name}",
                MemberAccountArgs(
                    member=member,
                    hub=settings.hub,
                    stack=args.stack,
                    cleanup_policy=settings.cleanup_policy(),
                    functions=functions,
                    providers={
                        region: self.providers.provider(member.account_id, region)
                        for region in member.regions
                    },
                    networks={
                        region: self.networks[(member.account_id, region)]
                        for region in member.network_regions()
                    },
                    inventory=self.hub.inventory,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})
