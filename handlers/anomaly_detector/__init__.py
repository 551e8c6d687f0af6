"""anomaly_detector: robust anomaly detection on metrics and daily cost, raised as alerts."""
