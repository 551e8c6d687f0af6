"""Where `app.py` imports `InsufficientHistoryError` from until its conversion to the skeleton
lands; the model itself is `seasonal_model.py` and the error lives in `exceptions.py`."""

from __future__ import annotations

from handlers.demand_forecaster.exceptions import InsufficientHistoryError

__all__ = ["InsufficientHistoryError"]
