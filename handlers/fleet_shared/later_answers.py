"""AWS error answers that mean "later" (throttling, a busy or failing service), and the
failures that may pass on a later attempt (`may_pass_on_retry`: those, and the network's).

botocore's standard mode retries them within seconds; a caller whose event the platform retries
minutes later (Lambda's asynchronous retries, a queue's redelivery) may get through then, where
an error result would end the event for good. Light: botocore's exceptions and the fleet's own
error classes, so a function that needs this (anomaly_detector's alarms) does not load the S3
event models of `s3_events`, which reads it too.
"""

from __future__ import annotations

from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.parsers import ResponseParserError

from fleet_shared.aws_answers import UnreadableAnswerError
from fleet_shared.exceptions import LockNotAcquiredError, ObjectReadTimeoutError, PagesCutShortError

RETRIED_ERROR_CODES = frozenset(
    {
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
        "InternalError",
        "LimitExceededException",
        "PriorRequestNotComplete",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "SlowDown",
        "ThrottledException",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "TransactionInProgressException",
    }
)
"""AWS error codes that mean "later": the codes botocore's standard retry mode retries as
throttling or transient. Its retries were spent within seconds; the event's, minutes later, may
get through."""

SERVER_ERROR_STATUS = 500
"""The first HTTP status of a server-side failure, which botocore retries as transient."""


def answered_later(error: BaseException) -> bool:
    """Whether `error` is an AWS error answer meaning "later": a code of `RETRIED_ERROR_CODES`
    (throttling, a busy service) or a server-side (5xx) failure."""
    if not isinstance(error, ClientError):
        return False
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = error.response.get("Error", {}).get("Code")
    return status >= SERVER_ERROR_STATUS or code in RETRIED_ERROR_CODES


def may_pass_on_retry(error: Exception) -> bool:
    """Whether the failure `error` may not happen again on a later attempt: the network (no
    answer, a connection cut or timed out, a body cut short, an answer that is not the call's:
    a proxy's or gateway's page on the way), throttling or a server-side (5xx) error
    (`answered_later`), another invocation's lock, a body that trickled past the time left or a
    listing whose pages did not end in it (a slow or broken path to S3, a proxy on it)."""
    network = HTTPClientError | BotocoreConnectionError | IncompleteReadError
    not_the_calls_answer = ResponseParserError | UnreadableAnswerError
    passing = LockNotAcquiredError | ObjectReadTimeoutError | PagesCutShortError
    if isinstance(error, network | not_the_calls_answer | passing):
        return True
    return answered_later(error)
