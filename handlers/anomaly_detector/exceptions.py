"""Errors of the anomaly detector."""

from __future__ import annotations

from fleet_shared.exceptions import FleetError
from fleet_shared.validation_errors import cut_echo, escaped_echo


class IncompleteSeriesError(FleetError):
    """GetMetricData did not return a series whole (a status other than Complete): what it did
    return may lack the anomaly, so nothing is concluded from it. The status is the answer's
    text (a proxy's, over lines with terminal escapes): quoted escaped and cut."""

    def __init__(self, label: str, status: str) -> None:
        self.label = label
        self.status = status
        super().__init__(f"{label}: GetMetricData answered {escaped_echo(status)}, not read")


class OpenEpisodesNotSavedError(Exception):
    """A series' record of open episodes changed under every attempt to save it (other scans or
    alarms saving it at the same time). Deliberately not a `FleetError`: the invocation fails, so
    the retry records the episodes whose alerts went out, or a later scan would alert them again
    and never resolve them."""

    def __init__(self, resource: str, attempts: int) -> None:
        self.resource = resource
        super().__init__(
            f"open episodes of {resource[:200]} not saved: changed by another writer on each of "
            f"{attempts} attempts"
        )


class AlarmReadsToRetryError(Exception):
    """Metrics of an alarm whose read failed in a way a later attempt may pass, after botocore's
    retries (`later_answers.may_pass_on_retry`: CloudWatch answered with "later", throttling or a
    server failure, or not at all, or could not be reached or cut the connection), or the alarm's
    account when so did the AssumeRole of its member role. Deliberately not a `FleetError`, which
    becomes the result of an invocation that succeeded: EventBridge invokes the detector
    asynchronously, so only a failed invocation is retried by Lambda (and kept in the dead-letter
    queue once its retries are spent), and the retry reads those metrics again. The alarm's other
    metrics were evaluated and their anomalies alerted first; their delivery claims make the
    retry's repeat of them no second alert. `not_read` names the metrics whose read failed in a
    way a retry does not change, which the retry fails again: only this error shows them, should
    every retry fail."""

    def __init__(
        self, alarm_name: str, failures: list[tuple[str, str]], not_read: list[str] | None = None
    ) -> None:
        self.alarm_name = alarm_name
        self.failures = failures
        self.not_read = not_read or []
        listed = "; ".join(f"{cut_echo(label)}: {cut_echo(error)}" for label, error in failures)
        # A failure is a metric's read or, before any, the AssumeRole into the alarm's account.
        message = f"alarm {cut_echo(alarm_name)}: {len(failures)} call(s) to retry: {listed}"
        if self.not_read:
            message += f"; not read, a retry would fail them again: {'; '.join(self.not_read)}"
        super().__init__(message)
