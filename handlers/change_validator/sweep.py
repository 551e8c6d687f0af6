"""The hourly sweep: end the validations whose callback never came.

A validation goes on only when its one-time callback fires. A schedule deleted by hand, or one
whose every delivery failed, left the validation open for ever: never judged, never alerted. The
sweep reads the index of open validations (`open_validations`) and, one validation at a time,
under its lock, ends `inconclusive` with its one warning each whose callback is more than
CALLBACK_GIVEN_UP_AFTER late (`validation.close_if_stalled`). One validation that cannot be
swept (an unreadable record, warned of once; one a callback is advancing; DynamoDB or SNS
failing for it) is reported as such and the others are swept; the next hour tries it again.
Before reading the index, a sweep notes there the validations opened before it existed
(`earlier_validations`, once after the upgrade; `earlier` in the result says how far that went).
"""

from __future__ import annotations

import logging
from typing import Any

from fleet_shared.alert_delivery import AlertNotDeliveredError
from fleet_shared.aws_answers import AWS_CALL_ERRORS, call_error_text
from fleet_shared.exceptions import LockNotAcquiredError, UnreadableStateValueError
from fleet_shared.handler import Invocation
from fleet_shared.validation_errors import cut_echo
from handlers.change_validator.earlier_validations import note_earlier_validations
from handlers.change_validator.exceptions import UnreadableValidationError
from handlers.change_validator.open_validations import open_validation_ids
from handlers.change_validator.services import ValidatorServices
from handlers.change_validator.validation import close_if_stalled

_logger = logging.getLogger(__name__)

SWEEP_STEP_SECONDS = 30
"""The time one validation's sweep may take (a GetSchedule, a few DynamoDB writes, one alert
with their retries): one not started with less left is `not_checked`, swept the next hour."""


def sweep(services: ValidatorServices, invocation: Invocation) -> dict[str, Any]:
    """Sweep every open validation; the update ids by outcome (`closed`, `waiting`, `done`,
    `unreadable`, `busy`, `not_checked`) and the errors of those that `failed`."""
    outcomes: dict[str, list[str]] = {
        outcome: []
        for outcome in ("closed", "waiting", "done", "unreadable", "busy", "not_checked")
    }
    failed: dict[str, str] = {}
    try:
        earlier = "done" if note_earlier_validations(services, invocation) else "searching"
    except (UnreadableStateValueError, *AWS_CALL_ERRORS) as error:
        # The index holds the validations opened since the upgrade: those are swept all the same,
        # and the next hour searches again.
        earlier = f"failed: {call_error_text(error)}"
        _logger.warning("validations opened before the index not searched: %s", earlier)
    for validation_id in open_validation_ids(services.state):
        shown = cut_echo(validation_id, 40)
        if not invocation.allows(SWEEP_STEP_SECONDS):
            outcomes["not_checked"].append(shown)
            continue
        try:
            outcomes[close_if_stalled(validation_id, services, invocation)].append(shown)
        except UnreadableValidationError:
            outcomes["unreadable"].append(shown)
        except LockNotAcquiredError:
            outcomes["busy"].append(shown)
        except (AlertNotDeliveredError, *AWS_CALL_ERRORS) as error:
            failed[shown] = call_error_text(error)
            _logger.warning("validation %s not swept: %s", shown, failed[shown])
    return {"status": "swept", **outcomes, "failed": failed, "earlier": earlier}
