"""Asking eks_scaler for a change from another function (the forecaster's predictive sizes, the
change validator's restore): a synchronous Lambda invoke whose failure is an answer, not an
exception, so the caller's own record (a decision, a verdict) stands whatever the scaler did."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from fleet_shared.aws_answers import call_error_text


def ask_scaler(lambda_client: Any, function_name: str, request: dict[str, Any]) -> dict[str, Any]:
    """The scaler's answer to `request`, or an error answer saying why there is none (never
    raises); one whose wait for the answer ran out also has `timed_out`: the scaler may still be
    acting on the request."""
    try:
        response = lambda_client.invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(request).encode("utf-8"),
        )
        answer = json.loads(response["Payload"].read() or b"{}")
    except ReadTimeoutError as error:
        return {
            "status": "error",
            "error": f"the scaler did not answer in time: {call_error_text(error)}",
            "timed_out": True,
        }
    except (ClientError, BotoCoreError, ValueError) as error:
        return {
            "status": "error",
            "error": f"the scaler could not be asked: {call_error_text(error)}",
        }
    if response.get("FunctionError") or not isinstance(answer, dict):
        return {"status": "error", "error": f"the scaler failed: {str(answer)[:300]}"}
    return answer
