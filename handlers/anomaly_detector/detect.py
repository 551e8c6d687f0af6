"""The `detect` action: the shared detector on a series given in the event, nothing else."""

from __future__ import annotations

from typing import Any

from fleet_shared.numeric.robust_anomalies import detect_anomalies
from handlers.anomaly_detector.models import DetectRequest


def detect_series(request: DetectRequest) -> dict[str, Any]:
    """The anomalies of the request's series, with the seasonality removed and the noise level."""
    values = [float("nan") if value is None else value for value in request.series]
    detection = detect_anomalies(
        values,
        request.timestamps,
        point_threshold=request.point_threshold,
        shift_threshold=request.shift_threshold,
    )
    return {
        "status": "ok",
        "points": detection.points,
        "seasonality": list(detection.seasonality),
        "noise_sigma": round(detection.noise_sigma, 6),
        "anomalies": [anomaly.to_dict() for anomaly in detection.anomalies],
    }
