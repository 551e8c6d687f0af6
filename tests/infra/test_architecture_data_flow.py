"""The data-flow diagram of docs/architecture.md draws what the catalog declares: which functions
the schedules, the member-events bus, the HTTP API and the alert topics start, and which function
invokes which. A reader tracing a flow through the diagram finds every edge the program wires."""

from __future__ import annotations

import re
from itertools import pairwise

from catalog import FUNCTIONS
from catalog.model import AlertTopics, ClusterSchedule, EventRule, FixedSchedule, HttpRoute
from fleetctl.mocked_program import REPO_ROOT

NODE = re.compile(r'(\w+)\["([^"]+)"\]')
ARROW = re.compile(r"\s+(?:--\s+.*?\s+)?-->\s+")


def _diagram() -> str:
    """The mermaid block of docs/architecture.md's Data flow section."""
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    return text.split("```mermaid\n", 1)[1].split("```", 1)[0]


def _function_nodes(diagram: str) -> dict[str, str]:
    """Node id -> function name, for the nodes labelled with a catalog function's name."""
    names = {spec.name for spec in FUNCTIONS}
    return {node: label for node, label in NODE.findall(diagram) if label in names}


def _edges(diagram: str) -> set[tuple[str, str]]:
    """Every (source id, target id) of the diagram's arrows, chains and `&` lists expanded."""
    edges: set[tuple[str, str]] = set()
    for line in diagram.splitlines():
        if "-->" not in line:
            continue
        groups = [
            [NODE.sub(r"\1", node).strip() for node in group.split("&")]
            for group in ARROW.split(line.strip())
        ]
        for sources, targets in pairwise(groups):
            edges |= {(source, target) for source in sources for target in targets}
    return edges


def _started_by(source: str) -> set[str]:
    """The functions the diagram draws an arrow to from `source`."""
    diagram = _diagram()
    nodes = _function_nodes(diagram)
    return {nodes[target] for origin, target in _edges(diagram) if origin == source}


def _with_trigger(*kinds: type) -> set[str]:
    return {
        spec.name
        for spec in FUNCTIONS
        if any(isinstance(trigger, kinds) for trigger in spec.triggers)
    }


def test_the_data_flow_diagram_has_a_node_for_every_catalog_function() -> None:
    # GIVEN the diagram's nodes WHEN those labelled with a function's name are read
    nodes = _function_nodes(_diagram())
    # THEN every catalog function is drawn once
    assert sorted(nodes.values()) == sorted(spec.name for spec in FUNCTIONS)


def test_the_data_flow_diagram_draws_every_invocation_of_the_catalog_and_no_other() -> None:
    # GIVEN the diagram's arrows between two functions
    diagram = _diagram()
    nodes = _function_nodes(diagram)
    drawn = {
        (nodes[source], nodes[target])
        for source, target in _edges(diagram)
        if source in nodes and target in nodes
    }
    # WHEN the catalog's `invokes` are read
    declared = {(spec.name, callee) for spec in FUNCTIONS for callee in spec.invokes}
    # THEN the diagram draws each of them, and no invocation the program does not grant
    assert drawn == declared


def test_the_data_flow_diagram_starts_the_functions_the_catalog_triggers() -> None:
    # GIVEN the catalog's triggers WHEN the diagram's schedules, bus, API and topics are read
    # THEN each starts exactly the functions with that kind of trigger
    assert _started_by("sched") == _with_trigger(FixedSchedule, ClusterSchedule)
    forwarded = {
        spec.name
        for spec in FUNCTIONS
        for trigger in spec.triggers
        if isinstance(trigger, EventRule) and trigger.forwarded_from_members
    }
    assert _started_by("bus") == forwarded
    assert _started_by("api") == _with_trigger(HttpRoute)
    assert _started_by("topics") == _with_trigger(AlertTopics)


def test_the_events_paragraph_names_every_function_the_member_events_start() -> None:
    # GIVEN the functions the members' forwarded events start (the catalog's forwarded rules)
    forwarded = {
        spec.name
        for spec in FUNCTIONS
        for trigger in spec.triggers
        if isinstance(trigger, EventRule) and trigger.forwarded_from_members
    }
    # WHEN the Data flow section's paragraph on events is read
    text = " ".join((REPO_ROOT / "docs" / "architecture.md").read_text().split())
    events = text.split("- **Events**: ", 1)[1].split(" - **", 1)[0]
    # THEN it names each of them (`the spot optimizer` for spot_optimizer), as the diagram does
    unnamed = sorted(name for name in forwarded if name.replace("_", " ") not in events)
    assert not unnamed, f"the Events paragraph does not name {unnamed}"
