"""Declared data-quality rules, their results and the quality score (0-100).

Each rule checks a number of items and counts the failing ones. The score is the weighted mean
of the rules' pass ratios (1 - failing / checked), over the rules that apply to this run, times
100: three services out of 400 without a region cost that rule under 1% of its weight, a
missing region list costs all of it. `counts_vs_previous` applies only when there is a previous
run; a rule with nothing to check counts as passed.

| rule                  | weight | checks                                                     |
|-----------------------|--------|------------------------------------------------------------|
| region_long_names     | 15     | every region has a long name                               |
| service_long_names    | 15     | every service has a long name                              |
| services_with_regions | 20     | every service is offered in at least one known region      |
| regions_with_services | 20     | every region offers at least one service                   |
| known_regions         | 15     | every (service, region) pair names a listed region         |
| counts_vs_previous    | 15     | region, service and pair counts within the tolerance       |
|                       |        | (REPORT_COUNT_TOLERANCE_PERCENT) of the previous run       |
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet_shared.processed_documents import ProcessedTotals, QualityReport, QualityRuleResult
from fleet_shared.report_documents import RawDocument
from handlers.report_processor.analysis import Analysis

EXAMPLES = 10
"""How many failing items a rule lists."""


@dataclass(frozen=True)
class Rule:
    """A declared rule: its name, weight and what it checks."""

    name: str
    weight: float
    description: str


RULES: tuple[Rule, ...] = (
    Rule("region_long_names", 15, "every region has a long name"),
    Rule("service_long_names", 15, "every service has a long name"),
    Rule("services_with_regions", 20, "every service is offered in at least one region"),
    Rule("regions_with_services", 20, "every region offers at least one service"),
    Rule("known_regions", 15, "every service-region pair names a region of the region list"),
    Rule(
        "counts_vs_previous",
        15,
        "region, service and pair counts within the tolerance of the previous run",
    ),
)
RULES_BY_NAME = {rule.name: rule for rule in RULES}


def _result(
    name: str, checked: int, failing: list[str], applicable: bool = True
) -> QualityRuleResult:
    rule = RULES_BY_NAME[name]
    return QualityRuleResult(
        rule=rule.name,
        description=rule.description,
        weight=rule.weight,
        checked=checked,
        failing=len(failing),
        examples=sorted(failing)[:EXAMPLES],
        applicable=applicable,
    )


def _count_drift(
    current: ProcessedTotals, previous: ProcessedTotals, tolerance_percent: float
) -> list[str]:
    drifted = []
    for name in ("regions", "services", "pairs"):
        now, before = getattr(current, name), getattr(previous, name)
        change = abs(now - before) / before * 100 if before else (100.0 if now else 0.0)
        if change > tolerance_percent:
            drifted.append(f"{name}: {before} -> {now} ({change:.1f}% > {tolerance_percent:g}%)")
    return drifted


def check_quality(
    raw: RawDocument,
    analysis: Analysis,
    totals: ProcessedTotals,
    previous_totals: ProcessedTotals | None,
    tolerance_percent: float,
) -> QualityReport:
    """Run every rule of `RULES` and score the document."""
    service_counts = analysis.matrix.sum(axis=0)
    region_counts = analysis.matrix.sum(axis=1)
    unknown = analysis.unknown_pairs
    results = [
        _result(
            "region_long_names",
            len(raw.regions),
            [region.code for region in raw.regions if not region.long_name],
        ),
        _result(
            "service_long_names",
            len(raw.services),
            [service.code for service in raw.services if not service.long_name],
        ),
        _result(
            "services_with_regions",
            len(raw.services),
            [str(code) for code, count in region_counts.items() if count == 0],
        ),
        _result(
            "regions_with_services",
            len(raw.regions),
            [str(code) for code, count in service_counts.items() if count == 0],
        ),
        _result(
            "known_regions",
            len(analysis.pairs) + len(unknown),
            [f"{row.service}@{row.region}" for row in unknown.itertuples()],
        ),
        _result(
            "counts_vs_previous",
            3 if previous_totals else 0,
            _count_drift(totals, previous_totals, tolerance_percent) if previous_totals else [],
            applicable=previous_totals is not None,
        ),
    ]
    weighted = [
        (result.weight, 1 - result.failing / result.checked if result.checked else 1.0)
        for result in results
        if result.applicable
    ]
    total_weight = sum(weight for weight, _ in weighted)
    score = round(sum(weight * ratio for weight, ratio in weighted) / total_weight * 100, 1)
    return QualityReport(
        score=score,
        rules=results,
        failing_rules=[result.rule for result in results if not result.passed],
    )
