"""moto and the local servers, made cheaper for the suite by tests/conftest.py, still answer as
they did."""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import load_pem_x509_certificate
from moto import mock_aws
from moto.sns.models import sns_backends

from tests.handlers.conftest import HUB_ACCOUNT_ID, REGION
from tests.handlers.deadlines import THREAD_REACHED_SECONDS


@pytest.mark.parametrize("recursive", [True, False])
@pytest.mark.parametrize("secure_only", [False, True])
def test_parameters_by_path_come_ten_a_page_in_moto_s_order_with_a_token_after_a_full_page(
    recursive: bool, secure_only: bool
) -> None:
    # GIVEN 43 parameters under /fleet, a third secure strings, a quarter one level further down
    with mock_aws():
        ssm = boto3.client("ssm", region_name=REGION)
        expected = []
        for index in range(43):
            nested = index % 4 == 0
            secure = index % 3 == 0
            name = f"/fleet/{'nested/' if nested else ''}p{index:02d}"
            ssm.put_parameter(
                Name=name, Value=str(index), Type="SecureString" if secure else "String"
            )
            if (recursive or not nested) and (secure or not secure_only):
                expected.append(name)
        filters = [{"Key": "Type", "Option": "Equals", "Values": ["SecureString"]}]
        # WHEN they are read page by page, ten at most a page
        pages: list[tuple[list[str], bool]] = []
        asked: dict[str, Any] = {"Path": "/fleet", "Recursive": recursive, "MaxResults": 10}
        if secure_only:
            asked["ParameterFilters"] = filters
        while True:
            answer = ssm.get_parameters_by_path(**asked)
            names = [parameter["Name"] for parameter in answer["Parameters"]]
            pages.append((names, "NextToken" in answer))
            if "NextToken" not in answer:
                break
            asked["NextToken"] = answer["NextToken"]
    # THEN the pages hold them in the order they were put, ten a page, each full page with a
    # token (as moto answers: the page after a last full one is empty)
    chunks = [expected[start : start + 10] for start in range(0, len(expected) + 1, 10)]
    assert pages == [(chunk, len(chunk) == 10) for chunk in chunks]


def test_queue_counts_tell_visible_in_flight_and_delayed_messages_apart() -> None:
    # GIVEN a queue with five messages, two of them delayed, one received and in flight
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="counted")["QueueUrl"]
        for index in range(5):
            sqs.send_message(QueueUrl=queue_url, MessageBody=str(index))
        for index in range(2):
            sqs.send_message(QueueUrl=queue_url, MessageBody=f"later {index}", DelaySeconds=60)
        [received] = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, VisibilityTimeout=60
        )["Messages"]
        # WHEN the queue's counts are asked for
        counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        # AND every message that can be received is received
        bodies = [
            message["Body"]
            for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)[
                "Messages"
            ]
        ]
    # THEN four are visible, one is in flight and two are delayed, and the four are received
    assert counts["ApproximateNumberOfMessages"] == "4"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert counts["ApproximateNumberOfMessagesDelayed"] == "2"
    assert sorted(bodies) == sorted({"0", "1", "2", "3", "4"} - {received["Body"]})


def test_sns_messages_to_two_queues_are_signed_and_their_signatures_verify() -> None:
    # GIVEN two topics, each delivering to its own queue
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        envelopes = []
        for name in ("first", "second"):
            queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            topic_arn = sns.create_topic(Name=name)["TopicArn"]
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
            # WHEN a message is published to each
            sns.publish(TopicArn=topic_arn, Message=f"to {name}")
            [message] = sqs.receive_message(QueueUrl=queue_url)["Messages"]
            envelopes.append(json.loads(message["Body"]))
        certificates = sns_backends[HUB_ACCOUNT_ID][REGION]._message_public_keys
        # THEN each is signed, and its signature verifies with the certificate it names
        for envelope in envelopes:
            signed = "".join(
                f"{field}\n{envelope[field]}\n"
                for field in ("Message", "MessageId", "Timestamp", "TopicArn", "Type")
            )
            pem = certificates[envelope["SigningCertURL"].rsplit("/", 1)[1]]
            public_key: Any = load_pem_x509_certificate(pem).public_key()
            public_key.verify(
                base64.b64decode(envelope["Signature"]),
                signed.encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )


def test_a_local_server_answers_and_stops_at_once_when_shut_down() -> None:
    # GIVEN a local HTTP server whose loop is asked to look for its shutdown only every hour
    # (werkzeug's, moto's server, asks every 0.5 s)
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, args=(3600,), daemon=True)
        thread.start()
        # WHEN it is asked for a page, then shut down
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with urllib.request.urlopen(url, timeout=5) as answer:
            status = answer.status
        stopped = threading.Event()
        threading.Thread(target=lambda: (server.shutdown(), stopped.set()), daemon=True).start()
        # THEN it answered, and stopped without waiting out the hour its loop was asked to sleep
        # between looks (socketserver's own loop would hold `shutdown()` that long)
        assert status == 204
        assert stopped.wait(THREAD_REACHED_SECONDS)
        thread.join(5)


def test_a_client_s_or_session_s_handlers_reach_no_client_made_afterwards() -> None:
    # GIVEN an SQS client whose before-send handler notes each request it sees, and a session
    # whose creating-client-class handler adds a method to its SQS clients
    with mock_aws():
        first = boto3.client("sqs", region_name=REGION)
        seen: list[str] = []
        first.meta.events.register("before-send.sqs", lambda request, **_: seen.append(request.url))
        marking = boto3.Session()
        marking.events.register(
            "creating-client-class.sqs",
            lambda class_attributes, **_: class_attributes.update(marked=lambda self: True),
        )
        marked = marking.client("sqs", region_name=REGION)
        # WHEN the first client makes a queue, and the marked one and one made afterwards list
        # the queues
        queue_url = first.create_queue(QueueName="noted")["QueueUrl"]
        later = boto3.client("sqs", region_name=REGION)
        listed = [client.list_queues()["QueueUrls"] for client in (marked, later)]
    # THEN only the first client's call met its handler, moto answered all three, and only the
    # marking session's client has the method it added
    assert len(seen) == 1
    assert listed == [[queue_url], [queue_url]]
    assert marked.marked()
    assert not hasattr(first, "marked")
    assert not hasattr(later, "marked")
