"""The hub account's half of the fleet: key, storage, alerts, layer, functions and triggers.

Everything here is created with the hub provider, and the functions and their triggers are
generated from the catalog: adding a function to `catalog/functions.py` adds its role, log
group, queues, alarms, schedules and permissions without touching this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from catalog.model import EnvSource, FunctionSpec, ResourceRef
from components.alert_topics import ALARMED_SEVERITY, AlertTopics, AlertTopicsArgs
from components.archives import precompile_archives
from components.buckets import ATHENA_RESULTS_PREFIX, INVENTORY_KEY, FleetBuckets, FleetBucketsArgs
from components.bytecode import RuntimePython
from components.dashboard import FleetDashboard, FleetDashboardArgs
from components.fleet_function import FleetFunction, FleetFunctionArgs
from components.fleet_key import FleetKey, FleetKeyArgs
from components.function_wiring import FleetReferences
from components.naming import resource_prefix
from components.settings import FleetSettings
from components.shared_layer import SharedLayer, SharedLayerArgs
from components.state_table import StateTable, StateTableArgs
from components.triggers import FleetTriggers, FleetTriggersArgs


@dataclass(frozen=True)
class FleetHubArgs:
    settings: FleetSettings
    stack: str
    provider: aws.Provider
    # The stack's enabled functions (`FleetSettings.enabled_functions`).
    functions: Sequence[FunctionSpec]
    # The interpreter that compiles the archives' bytecode; without one they carry sources only.
    runtime_python: RuntimePython | None = None


def _cost_export_account_ids(
    settings: FleetSettings, functions: Sequence[FunctionSpec]
) -> tuple[str, ...]:
    """The accounts whose Data Exports export the data bucket and the key admit: none unless an
    enabled function reads the CUR and the stack leaves its location to the data bucket."""
    if not any(EnvSource.COST_CUR_BUCKET in spec.environment.values() for spec in functions):
        return ()
    return settings.cost_report.export_delivery_account_ids(settings.hub.account_id)


def _uses_athena(functions: Sequence[FunctionSpec]) -> bool:
    return any(
        EnvSource.ATHENA_WORKGROUP in spec.environment.values()
        or any(
            ResourceRef.ATHENA_WORKGROUP in statement.resources for statement in spec.permissions
        )
        for spec in functions
    )


def _in_catalog_order(functions: list[FleetFunction]) -> pulumi.Output[list[FleetFunction]]:
    """The functions, once each one's Lambda function is registered, awaited one after another
    in catalog order.

    Pulumi expands a list of dependencies through a set: when several functions failed (their
    policies over IAM's size), the one it awaited first named the error the program stopped
    with, another from run to run. Awaited in order, it is the first failed function's.
    """
    registered: pulumi.Output[object] = pulumi.Output.from_input(None)
    for function in functions:
        registered = registered.apply(lambda _, urn=function.function.urn: urn)
    return registered.apply(lambda _: functions)


class FleetHub(pulumi.ComponentResource):
    """The fleet's shared resources and one FleetFunction per enabled catalog entry, in the hub."""

    key: FleetKey
    buckets: FleetBuckets
    state_table: StateTable
    alerts: AlertTopics
    layer: SharedLayer
    athena_workgroup: aws.athena.Workgroup | None
    functions: dict[str, FleetFunction]
    # The fleet inventory object, written after every function.
    inventory: aws.s3.BucketObjectv2
    triggers: FleetTriggers
    dashboard: FleetDashboard

    def __init__(
        self, name: str, args: FleetHubArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:hub:FleetHub", name, None, opts)
        settings, provider = args.settings, args.provider
        account_id, region = settings.hub.account_id, settings.hub.region
        prefix = resource_prefix(args.stack)
        child = pulumi.ResourceOptions(parent=self)
        cost_export_account_ids = _cost_export_account_ids(settings, args.functions)

        self.key = FleetKey(
            f"{name}-fleet-key",
            FleetKeyArgs(
                account_id=account_id,
                region=region,
                alias=prefix,
                provider=provider,
                cost_export_account_ids=cost_export_account_ids,
            ),
            opts=child,
        )
        self.buckets = FleetBuckets(
            f"{name}-buckets",
            FleetBucketsArgs(
                prefix=prefix,
                account_id=account_id,
                region=region,
                key_arn=self.key.arn,
                provider=provider,
                cost_export_account_ids=cost_export_account_ids,
                cur_prefix=settings.cost_report.cur_prefix,
            ),
            opts=child,
        )
        self.state_table = StateTable(
            f"{name}-state",
            StateTableArgs(table_name=f"{prefix}-state", key_arn=self.key.arn, provider=provider),
            opts=child,
        )
        self.alerts = AlertTopics(
            f"{name}-alerts",
            AlertTopicsArgs(
                prefix=prefix,
                account_id=account_id,
                key_arn=self.key.arn,
                emails=settings.alerts.emails,
                provider=provider,
            ),
            opts=child,
        )
        if args.runtime_python is not None:
            precompile_archives([spec.name for spec in args.functions], args.runtime_python)
        self.layer = SharedLayer(
            f"{name}-shared-layer",
            SharedLayerArgs(
                layer_name=f"{prefix}-fleet-shared",
                provider=provider,
                runtime_python=args.runtime_python,
            ),
            opts=child,
        )
        self.athena_workgroup = (
            self._athena_workgroup(name, prefix, provider) if _uses_athena(args.functions) else None
        )
        data_bucket = self.buckets.data_bucket
        references = FleetReferences(
            stack=args.stack,
            settings=settings,
            key_arn=self.key.arn,
            data_bucket_name=data_bucket.bucket,
            data_bucket_arn=data_bucket.arn,
            inventory_key=INVENTORY_KEY,
            table_name=self.state_table.table.name,
            table_arn=self.state_table.table.arn,
            topic_arns={severity: topic.arn for severity, topic in self.alerts.topics.items()},
            email_topic_arn=self.alerts.email_topic.arn,
            warning_topic_arn=self.alerts.topics[ALARMED_SEVERITY].arn,
            layer_arn=self.layer.arn,
            athena_workgroup_name=self.athena_workgroup.name if self.athena_workgroup else None,
            athena_workgroup_arn=self.athena_workgroup.arn if self.athena_workgroup else None,
            function_names=tuple(spec.name for spec in args.functions),
        )
        self.functions = {
            spec.name: FleetFunction(
                f"{name}-{spec.name.replace('_', '-')}",
                FleetFunctionArgs(
                    spec=spec,
                    references=references,
                    provider=provider,
                    memory_mb=settings.function_memory_mb(spec.name),
                    runtime_python=args.runtime_python,
                ),
                opts=child,
            )
            for spec in args.functions
        }
        # After every function: a function still running the release before refuses an
        # inventory with a field it does not know (`FleetBuckets.write_inventory`).
        self.inventory = self.buckets.write_inventory(
            settings.inventory(args.stack).model_dump(mode="json"),
            after=_in_catalog_order(list(self.functions.values())),
        )
        self.triggers = FleetTriggers(
            f"{name}-triggers",
            FleetTriggersArgs(
                functions=list(self.functions.values()),
                references=references,
                data_bucket=data_bucket,
                topics=self.alerts.topics,
                provider=provider,
            ),
            opts=child,
        )
        self.dashboard = FleetDashboard(
            f"{name}-dashboard",
            FleetDashboardArgs(
                dashboard_name=f"{prefix}-fleet",
                function_names=[function.function_name for function in self.functions.values()],
                region=region,
                provider=provider,
            ),
            opts=child,
        )
        self.register_outputs(
            {
                "data_bucket": data_bucket.bucket,
                "state_table": self.state_table.table.name,
                "functions": {
                    spec_name: function.function.arn
                    for spec_name, function in self.functions.items()
                },
            }
        )

    def _athena_workgroup(
        self, name: str, prefix: str, provider: aws.Provider
    ) -> aws.athena.Workgroup:
        """Queries write encrypted results under athena-results/; users cannot override it.
        `force_destroy`: Athena refuses to delete a workgroup that has run queries unless told
        to, and `pulumi destroy` would stop on it; the history is all it holds (the results stay
        in the data bucket)."""
        return aws.athena.Workgroup(
            f"{name}-athena",
            name=f"{prefix}-fleet",
            description="lambda-fleet cost analysis",
            force_destroy=True,
            configuration=aws.athena.WorkgroupConfigurationArgs(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location=pulumi.Output.concat(
                        "s3://", self.buckets.data_bucket.bucket, "/", ATHENA_RESULTS_PREFIX
                    ),
                    encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_KMS", kms_key_arn=self.key.arn
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
