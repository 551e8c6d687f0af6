"""docs/existing_clusters.md names the settings refused on an existing cluster: the ones the stack
file validation refuses there. A team joining a cluster reads that list before writing its entry."""

from __future__ import annotations

import re

from components.settings import CREATION_ONLY_NODE_GROUP_FIELDS
from fleetctl.mocked_program import REPO_ROOT


def test_the_page_names_the_settings_refused_on_an_existing_cluster() -> None:
    # GIVEN the page's list of the settings that only shape a created cluster
    page = " ".join((REPO_ROOT / "docs" / "existing_clusters.md").read_text().split())
    found = re.search(r"Settings that only shape a created cluster \((.*?)\) are refused", page)
    assert found, "docs/existing_clusters.md no longer lists the refused settings"
    named = set(re.findall(r"`(\w+)`", found[1]))
    # WHEN the settings validation's creation-only fields are read
    refused = {
        "kubernetes_version",
        "endpoint_public_access_cidrs",
        "deletion_protection",
        *CREATION_ONLY_NODE_GROUP_FIELDS,
    }
    # THEN the page names each of them and no other
    assert named == refused
