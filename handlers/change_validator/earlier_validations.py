"""The validations opened before the index of open validations existed, noted in it once.

The index (`open_validations`) holds the validations saved since the deployment that added it:
one opened before it, whose callback schedule was then deleted or failed every delivery, was
outside it for as long as its record is kept (30 days), so neither the sweep ended it nor did a
later change of its cluster take its baseline. The hourly sweep therefore first looks for such
records once (`fleet_shared.earlier_values`: a Scan of the state table, at most
EARLIER_SEARCH_TIME_SHARE of the invocation's time, going on next hour from where it stopped)
and notes each one not done in the index; the sweep then reaches it as any other. A done one is
left alone (its verdict and alert were given then; stepping it again could ask the scaler to
restore a size weeks later), and an unreadable one is noted, so the sweep reports it once.
"""

from __future__ import annotations

from fleet_shared.earlier_values import SearchTime, earlier_keys, save_search
from fleet_shared.handler import Invocation
from fleet_shared.timestamps import iso_z
from handlers.change_validator.exceptions import UnreadableValidationError
from handlers.change_validator.open_validations import (
    OPEN_VALIDATIONS_KEY,
    note_open,
    open_validation_ids,
)
from handlers.change_validator.record_shape import Phase
from handlers.change_validator.services import ValidatorServices
from handlers.change_validator.validation import (
    RECORD_NAME,
    RECORD_TTL_SECONDS,
    SCOPE,
    load_record,
)

EARLIER_VALIDATIONS_KEY = f"{OPEN_VALIDATIONS_KEY}/earlier"
"""Where the search keeps its progress, then its mark of being done."""
EARLIER_SEARCH_TIME_SHARE = 0.25
"""The share of the sweep's time left at the search's first page that the search may take."""
EARLIER_SEARCH_PAGE_ITEMS = 1000
"""Items a page of the Scan evaluates at most: the time left is checked at least this often."""


def note_earlier_validations(services: ValidatorServices, invocation: Invocation) -> bool:
    """Note in the index every validation not done whose record was saved before the index
    existed, as far as this sweep's share of time goes; whether the search is done (now or
    before). Raises the state table's errors."""
    found = earlier_keys(
        services.state,
        EARLIER_VALIDATIONS_KEY,
        value_name=RECORD_NAME,
        key_prefix=f"{SCOPE}/",
        page_items=EARLIER_SEARCH_PAGE_ITEMS,
        go_on=SearchTime(invocation.remaining_seconds, EARLIER_SEARCH_TIME_SHARE).go_on,
    )
    if found is None:
        return True
    indexed = set(open_validation_ids(services.state))
    for key in found.keys:
        validation_id = key.removeprefix(f"{SCOPE}/")
        if validation_id not in indexed and _open(services, validation_id):
            note_open(services.state, validation_id, RECORD_TTL_SECONDS)
    save_search(services.state, EARLIER_VALIDATIONS_KEY, found, iso_z(services.clock.now()))
    return found.searched_to_end


def _open(services: ValidatorServices, validation_id: str) -> bool:
    """Whether the validation `validation_id` is to be swept: not done, or unreadable."""
    try:
        record = load_record(services, validation_id)
    except UnreadableValidationError:
        return True
    return record is not None and record["phase"] != Phase.DONE.value
