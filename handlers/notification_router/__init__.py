"""notification_router: dedupes and routes fleet alerts to PagerDuty, Slack and e-mail."""
