"""One CloudWatch dashboard per stack: invocations, errors, p95 duration and throttles."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

WIDGET_WIDTH = 12
WIDGET_HEIGHT = 6
PERIOD_SECONDS = 300

# (title, metric, statistic): one widget each, one line per function.
WIDGETS = (
    ("Invocations", "Invocations", "Sum"),
    ("Errors", "Errors", "Sum"),
    ("Duration (p95)", "Duration", "p95"),
    ("Throttles", "Throttles", "Sum"),
)


def dashboard_body(function_names: Sequence[str], region: str) -> str:
    """The dashboard JSON: a plain, sorted string, so it only changes when the fleet does."""
    widgets = []
    for index, (title, metric, statistic) in enumerate(WIDGETS):
        widgets.append(
            {
                "type": "metric",
                "x": (index % 2) * WIDGET_WIDTH,
                "y": (index // 2) * WIDGET_HEIGHT,
                "width": WIDGET_WIDTH,
                "height": WIDGET_HEIGHT,
                "properties": {
                    "title": title,
                    "region": region,
                    "view": "timeSeries",
                    "stat": statistic,
                    "period": PERIOD_SECONDS,
                    "metrics": [
                        ["AWS/Lambda", metric, "FunctionName", name]
                        for name in sorted(function_names)
                    ],
                },
            }
        )
    return json.dumps({"widgets": widgets}, sort_keys=True)


@dataclass(frozen=True)
class FleetDashboardArgs:
    dashboard_name: str
    function_names: Sequence[str]
    region: str
    provider: aws.Provider


class FleetDashboard(pulumi.ComponentResource):
    """The fleet at a glance, per function."""

    dashboard: aws.cloudwatch.Dashboard

    def __init__(
        self, name: str, args: FleetDashboardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:observability:FleetDashboard", name, None, opts)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.dashboard_name,
            dashboard_body=dashboard_body(args.function_names, args.region),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.register_outputs({"name": self.dashboard.dashboard_name})
