"""The Lambda alias through which the fleet's HTTP API invokes a function: how a function tells
a request API Gateway authorised from an event shaped like one.

An HTTP API event's `requestContext` (the IAM caller API Gateway verified among it) is only text
in the event: a direct `lambda:Invoke` can send the same shape, naming any caller. Lambda names
the ARN an invocation was made through in its context (`invoked_function_arn`), which no caller
can set, and a grant of `lambda:InvokeFunction` on the function's own ARN does not reach its
aliases. So the program points the API's integration at this alias and lets only API Gateway
invoke it (docs/functions/eks_scaler.md, "Who asked"). Imported by the program too: no boto3.
"""

from __future__ import annotations

HTTP_API_ALIAS = "http-api"
"""The alias (of `$LATEST`) the HTTP API's integration invokes, and only it."""


def invoked_through_the_api(invoked_function_arn: str | None) -> bool:
    """Whether Lambda ran the invocation through HTTP_API_ALIAS (`arn:aws:lambda:<region>:
    <account>:function:<name>:<alias>`), and not through the function's own ARN."""
    if not invoked_function_arn:
        return False
    return invoked_function_arn.split(":")[7:] == [HTTP_API_ALIAS]
