"""fleet_shared.foreign_answers: a JSON-protocol answer is refused as a gateway's page only when
its body is markup, whatever its Content-Type says."""

from __future__ import annotations

import boto3
import pytest
from botocore.model import OperationModel

from fleet_shared.foreign_answers import ForeignAnswerError, refuse_foreign_answer


def create_schedule() -> OperationModel:
    client = boto3.client("scheduler", region_name="ap-south-1")
    return client.meta.service_model.operation_model("CreateSchedule")


def answer(body: bytes, content_type: str) -> dict[str, object]:
    return {"status_code": 200, "headers": {"Content-Type": content_type}, "body": body}


def test_a_json_answer_labelled_text_html_is_read_as_json() -> None:
    # GIVEN Scheduler's CreateSchedule answered with its JSON, labelled text/html as moto's
    # server labels it
    response = answer(
        b'{"ScheduleArn": "arn:aws:scheduler:ap-south-1:1:schedule/d/s"}', "text/html"
    )
    # WHEN the answer is checked before parsing
    # THEN it is left to botocore's parser
    assert refuse_foreign_answer(response, create_schedule()) is None


def test_a_gateway_page_labelled_text_html_is_refused_naming_the_operation() -> None:
    # GIVEN the same call answered with a gateway's own page
    response = answer(b"  <html><body>502 Bad Gateway</body></html>", "text/html; charset=utf-8")
    # WHEN the answer is checked before parsing
    # THEN it is refused, naming the operation and showing the start of the page
    with pytest.raises(ForeignAnswerError, match=r"CreateSchedule answered with text/html.*502"):
        refuse_foreign_answer(response, create_schedule())
