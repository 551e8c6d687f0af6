"""The program's resources form one tree under the `Fleet` component: each is a child of the
component that made it, named after it, and every component of ours has a `lambda-fleet:` type
and registers its outputs. A resource's URN holds its parent's type and its own name: one that
loses its parent or changes its name is replaced at the next `pulumi up`."""

from __future__ import annotations

import re

from fleetctl.mocked_program import ProgramRun, RegisteredResource

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
FLEET_TYPE = "lambda-fleet:fleet:Fleet"
COMPONENT_TYPE = re.compile(r"lambda-fleet:[a-z]+:[A-Z][A-Za-z]+")


def _local_components(run: ProgramRun) -> list[RegisteredResource]:
    """The components this program builds itself (not the stack, not pulumi-eks's)."""
    return [
        resource
        for resource in run.resources
        if not resource.custom and not resource.remote and resource.type != ROOT_STACK_TYPE
    ]


def test_every_resource_is_a_child_of_the_component_that_made_it_named_after_it(
    stack_run: ProgramRun,
):
    # GIVEN every resource the stack's program registers, with its parent
    by_urn = {resource.urn: resource for resource in stack_run.resources}
    outside_the_fleet, misnamed = [], []
    for resource in stack_run.resources:
        if resource.type == ROOT_STACK_TYPE:
            continue
        parent = by_urn[resource.parent] if resource.parent else None
        # WHEN its parent is looked at
        if parent is None or parent.type == ROOT_STACK_TYPE:
            if resource.type != FLEET_TYPE:
                outside_the_fleet.append(f"{resource.type} {resource.name}")
        elif not resource.name.startswith(f"{parent.name}-"):
            misnamed.append(f"{resource.type} {resource.name} (in {parent.name})")
    # THEN only the Fleet component hangs from the stack, and each other resource's name begins
    # with its parent's
    assert outside_the_fleet == []
    assert misnamed == []


def test_every_component_has_a_fleet_type_and_registers_its_outputs(stack_run: ProgramRun):
    # GIVEN the components the program builds
    components = _local_components(stack_run)
    assert FLEET_TYPE in {component.type for component in components}
    # WHEN their types and registered outputs are looked at
    mistyped = [c.type for c in components if not COMPONENT_TYPE.fullmatch(c.type)]
    silent = [f"{c.type} {c.name}" for c in components if c.urn not in stack_run.component_outputs]
    # THEN each is `lambda-fleet:<area>:<Name>` and called register_outputs, which tells the
    # engine the component is complete
    assert mistyped == []
    assert silent == []
