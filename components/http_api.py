"""The fleet's HTTP API: one per stack, every route IAM-authorised, access-logged.

Callers sign requests with SigV4 (`AWS_IAM`), so only principals allowed `execute-api:Invoke`
on a route can call it; each function may be invoked by the API only for its own routes, and
only through its `http-api` alias (`fleet_shared.http_api_alias`), which nothing else may invoke:
the function believes the caller an event names only when Lambda ran it through that alias.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from catalog.model import HttpRoute
from components.fleet_function import FleetFunction
from components.trigger_context import Binding, BuiltTriggers, TriggerContext
from fleet_shared.http_api_alias import HTTP_API_ALIAS

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
    routes: list[tuple[FleetFunction, HttpRoute]] = list(bindings)
    aliases: dict[str, aws.lambda_.Alias] = {}
    grants: dict[str, list[aws.lambda_.Permission]] = {}
    for function, route in routes:
        spec_name = function.spec.name
        if spec_name not in aliases:
            # Of $LATEST: the alias only names the way in, the code is the function's own.
            aliases[spec_name] = aws.lambda_.Alias(
                f"{context.name}-http-api-{function.short_name}-alias",
                name=HTTP_API_ALIAS,
                function_name=function.function.name,
                function_version="$LATEST",
                description="the HTTP API's way in: only API Gateway may invoke it",
                opts=context.child,
            )
        grants.setdefault(spec_name, []).append(
            aws.lambda_.Permission(
                f"{context.name}-http-api-{_route_id(route)}-invoke",
                action="lambda:InvokeFunction",
                function=function.function.name,
                qualifier=aliases[spec_name].name,
                principal="apigateway.amazonaws.com",
                source_arn=pulumi.Output.concat(api.execution_arn, "/*/", route.method, route.path),
                opts=context.child,
            )
        )
    integrations: dict[str, aws.apigatewayv2.Integration] = {}
    for function, route in routes:
        spec_name = function.spec.name
        if spec_name not in integrations:
            # After the grants: pointed at the alias before API Gateway may invoke it, the
            # API would answer 500 until they exist.
            integrations[spec_name] = aws.apigatewayv2.Integration(
                f"{context.name}-http-api-{function.short_name}",
                api_id=api.id,
                integration_type="AWS_PROXY",
                integration_method="POST",
                integration_uri=aliases[spec_name].arn,
                payload_format_version="2.0",
                opts=context.child_after(*grants[spec_name]),
            )
        aws.apigatewayv2.Route(
            f"{context.name}-http-api-{_route_id(route)}",
            api_id=api.id,
            route_key=f"{route.method} {route.path}",
            authorization_type="AWS_IAM",
            target=pulumi.Output.concat("integrations/", integrations[spec_name].id),
            opts=context.child,
        )
    return {"http_api": api}


def _route_id(route: HttpRoute) -> str:
    return f"{route.method.lower()}{route.path.replace('/', '-')}"
