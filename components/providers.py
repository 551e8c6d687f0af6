"""One AWS provider per (account, region): every resource of an account is created with it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.settings import PROJECT, FleetSettings

MANAGED_BY = "pulumi"
# The oldest Pulumi CLI whose engine asks the new provider (DiffConfig) whether a resource handed
# to another explicit provider must be replaced; older engines always replace it. A member's IAM
# goes through its first region's provider, so reordering or adding regions hands it over, and a
# replacement of a role with a fixed name fails at `pulumi up` (created before the old one goes).
REQUIRED_PULUMI_CLI = ">=3.151.0"


@dataclass(frozen=True)
class AccountProvidersArgs:
    settings: FleetSettings
    stack: str


@dataclass(frozen=True)
class AccountRegion:
    account_id: str
    account_name: str
    region: str


class AccountProviders(pulumi.ComponentResource):
    """Providers that assume each account's deploy role, pinned to that account by id.

    `allowed_account_ids` makes a mistaken role (or caller credentials) fail the update instead
    of creating resources in the wrong account.
    """

    def __init__(
        self, name: str, args: AccountProvidersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:accounts:AccountProviders", name, None, opts)
        settings = args.settings
        self._providers: dict[tuple[str, str], aws.Provider] = {}
        accounts = [(settings.hub, [settings.hub.region])]
        accounts += [(member, list(member.regions)) for member in settings.members]
        for account, regions in accounts:
            for region in regions:
                self._providers[(account.account_id, region)] = aws.Provider(
                    f"{name}-{account.name}-{region}",
                    region=region,
                    allowed_account_ids=[account.account_id],
                    assume_roles=[
                        aws.ProviderAssumeRoleArgs(
                            role_arn=account.deploy_role_arn,
                            session_name=f"{PROJECT}-{args.stack}",
                        )
                    ],
                    default_tags=aws.ProviderDefaultTagsArgs(
                        tags={
                            **settings.tags,
                            "project": PROJECT,
                            "stack": args.stack,
                            "account": account.name,
                            "managed-by": MANAGED_BY,
                        }
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.hub = self.provider(settings.hub.account_id, settings.hub.region)
        self.register_outputs(
            {"accounts": sorted(f"{account_id}/{region}" for account_id, region in self._providers)}
        )

    def provider(self, account_id: str, region: str) -> aws.Provider:
        """The provider of (account, region); a KeyError names the missing pair."""
        try:
            return self._providers[(account_id, region)]
        except KeyError:
            raise KeyError(f"no provider for account {account_id} in {region}") from None
