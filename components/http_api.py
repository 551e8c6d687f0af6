"""The fleet's HTTP API: one per stack, every route IAM-authorised, access-logged.

Callers sign requests with SigV4 (`AWS_IAM`), so only principals allowed `execute-api:Invoke`
on a route can call it; each function may be invoked by the API only for its own routes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from catalog.model import HttpRoute
from components.fleet_function import FleetFunction
from components.trigger_context import Binding, BuiltTriggers, TriggerContext

ACCESS_LOG_RETENTION_DAYS = 30
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "caller": "$context.identity.caller",
        "userArn": "$context.identity.userArn",
        "sourceIp": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "integrationError": "$context.integrationErrorMessage",
    },
    sort_keys=True,
)


def build_http_api(context: TriggerContext, bindings: Sequence[Binding]) -> BuiltTriggers:
    """The API, its `$default` stage, one integration per function and one route per HttpRoute."""
    api_name = f"{context.prefix}-fleet-api"
    api = aws.apigatewayv2.Api(
        f"{context.name}-http-api",
        name=api_name,
        protocol_type="HTTP",
        description="lambda-fleet operations API (IAM-authorised)",
        opts=context.child,
    )
    access_logs = aws.cloudwatch.LogGroup(
        f"{context.name}-http-api-access-logs",
        name=f"/aws/apigateway/{api_name}",
        retention_in_days=ACCESS_LOG_RETENTION_DAYS,
        kms_key_id=context.references.key_arn,
        opts=context.child,
    )
    aws.apigatewayv2.Stage(
        f"{context.name}-http-api-stage",
        api_id=api.id,
        name="$default",
        auto_deploy=True,
        access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
            destination_arn=access_logs.arn, format=ACCESS_LOG_FORMAT
        ),
        opts=context.child,
    )
    integrations: dict[str, aws.apigatewayv2.Integration] = {}
    routes: list[tuple[FleetFunction, HttpRoute]] = list(bindings)
    for function, route in routes:
        spec_name = function.spec.name
        if spec_name not in integrations:
            integrations[spec_name] = aws.apigatewayv2.Integration(
                f"{context.name}-http-api-{function.short_name}",
                api_id=api.id,
                integration_type="AWS_PROXY",
                integration_method="POST",
                integration_uri=function.function.arn,
                payload_format_version="2.0",
                opts=context.child,
            )
        route_id = f"{route.method.lower()}{route.path.replace('/', '-')}"
        aws.apigatewayv2.Route(
            f"{context.name}-http-api-{route_id}",
            api_id=api.id,
            route_key=f"{route.method} {route.path}",
            authorization_type="AWS_IAM",
            target=pulumi.Output.concat("integrations/", integrations[spec_name].id),
            opts=context.child,
        )
        aws.lambda_.Permission(
            f"{context.name}-http-api-{route_id}-invoke",
            action="lambda:InvokeFunction",
            function=function.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(api.execution_arn, "/*/", route.method, route.path),
            opts=context.child,
        )
    return {"http_api": api}
