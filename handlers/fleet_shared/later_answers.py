"""AWS error answers that mean "later": throttling, a busy or failing service.

botocore's standard mode retries them within seconds; a caller whose event the platform retries
minutes later (Lambda's asynchronous retries, a queue's redelivery) may get through then, where
an error result would end the event for good. Light: botocore's exceptions only, so a function
that needs this does not load the S3 event models of `s3_events`, which reads it too.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

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
