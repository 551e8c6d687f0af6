"""The HTTP API event (payload format 2.0) as a model: `HttpApiEvent`.

`HttpApiEvent` is the fleet's own copy of Powertools' `APIGatewayProxyEventV2Model` (same fields,
types, order, source IP check and nested model names, so a bad request is refused with the same
message): importing Powertools' model runs its parser package and builds eight models at import,
about 13 ms of a cold start (docs/architecture.md); these are built on first validation.
A function imports this module only when an HTTP request comes (`fleet_shared.http_api`), and
the source IP's type, pydantic's `IPvAnyNetwork`, only when the model is first built: a function
invoked by schedule or by another function never validates an HTTP request.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import ip_network
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, field_validator
from pydantic_core import CoreSchema

TEST_INVOKE_SOURCE_IP = "test-invoke-source-ip"
"""The source IP of a request sent from the API Gateway console's test feature."""


class SourceIpNetwork:
    """pydantic's `IPvAnyNetwork` (the same schema, values and messages), imported only when a
    model using it is built."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic.networks import IPvAnyNetwork  # noqa: PLC0415

        return handler.generate_schema(IPvAnyNetwork)


class _HttpApiModel(BaseModel):
    model_config = ConfigDict(defer_build=True)


class RequestContextV2AuthorizerIamCognito(_HttpApiModel):
    """`requestContext.authorizer.iam.cognitoIdentity`."""

    amr: list[str]
    identityId: str  # noqa: N815 (the event's own field names, here and below)
    identityPoolId: str  # noqa: N815


class RequestContextV2AuthorizerIam(_HttpApiModel):
    """`requestContext.authorizer.iam`: the caller of an IAM-authorized route."""

    accessKey: str | None = None  # noqa: N815
    accountId: str | None = None  # noqa: N815
    callerId: str | None = None  # noqa: N815
    principalOrgId: str | None = None  # noqa: N815
    userArn: str | None = None  # noqa: N815
    userId: str | None = None  # noqa: N815
    cognitoIdentity: RequestContextV2AuthorizerIamCognito | None = None  # noqa: N815


class RequestContextV2AuthorizerJwt(_HttpApiModel):
    """`requestContext.authorizer.jwt`."""

    claims: dict[str, Any]
    scopes: list[str] | None = None


class RequestContextV2Authorizer(_HttpApiModel):
    """`requestContext.authorizer`."""

    jwt: RequestContextV2AuthorizerJwt | None = None
    iam: RequestContextV2AuthorizerIam | None = None
    lambda_value: dict[str, Any] | None = Field(None, alias="lambda")


class RequestContextV2Http(_HttpApiModel):
    """`requestContext.http`."""

    method: Literal["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    path: str
    protocol: str
    sourceIp: SourceIpNetwork | str  # noqa: N815
    userAgent: str  # noqa: N815

    @field_validator("sourceIp", mode="before")
    @classmethod
    def _source_ip(cls, value: Any) -> Any:
        # Behind some proxies the address carries a port ("10.1.15.242:39870", "[::1]:443"):
        # the address part must be valid, the value is kept as sent.
        # Not a string: the field's own types refuse it, naming the field (Powertools' validator
        # raises AttributeError here, which would fail the invocation instead of answering 400).
        if value == TEST_INVOKE_SOURCE_IP or not isinstance(value, str):
            return value
        # ip_network reads an address as IPvAnyNetwork does (IPv4, else IPv6, strict) and raises
        # ValueError where it does.
        try:
            ip_network(value)
        except ValueError:
            if value.startswith("[") and "]:" in value:
                address = value.split("]:")[0][1:]
            elif ":" in value and value.count(":") <= 1:
                address = value.split(":")[0]
            else:
                address = value
            try:
                ip_network(address)
            except ValueError as error:
                raise ValueError(f"Invalid IP address in sourceIp: {address}") from error
        return value


class RequestContextV2(_HttpApiModel):
    """`requestContext`."""

    accountId: str  # noqa: N815
    apiId: str  # noqa: N815
    authorizer: RequestContextV2Authorizer | None = None
    domainName: str  # noqa: N815
    domainPrefix: str  # noqa: N815
    requestId: str  # noqa: N815
    routeKey: str  # noqa: N815
    stage: str
    time: str
    timeEpoch: datetime  # noqa: N815
    http: RequestContextV2Http


class HttpApiEvent(_HttpApiModel):
    """An HTTP API request, payload format 2.0."""

    version: str
    routeKey: str  # noqa: N815
    rawPath: str  # noqa: N815
    rawQueryString: str  # noqa: N815
    cookies: list[str] | None = None
    headers: dict[str, str]
    queryStringParameters: dict[str, str] | None = None  # noqa: N815
    pathParameters: dict[str, str] | None = None  # noqa: N815
    stageVariables: dict[str, str] | None = None  # noqa: N815
    requestContext: RequestContextV2  # noqa: N815
    body: str | type[BaseModel] | None = None
    isBase64Encoded: bool | None = None  # noqa: N815
