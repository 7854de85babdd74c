"""The test each slice of an explorer campaign runs (the plugin, options and merge: gradoracle.explore_campaign)."""

from __future__ import annotations

from gradoracle import explore
from gradoracle.explore_campaign import SLICE_PROPERTY

FAILING = ("wrong", "oracle")


def test_slice(explore_slice, request):
    """One slice of the campaign, searched for its seconds (or examples); its JSON goes to the merged report."""
    campaign = request.config.gradoracle_campaign
    i, (op, dtype, mode) = explore_slice
    result = explore.explore_slice(op, dtype, mode, campaign["seconds"], campaign["seed"] * 1000 + i,
                                   examples=campaign["examples"])
    request.node.user_properties.append((SLICE_PROPERTY, {"plan_index": i, **result.to_json()}))
    assert result.classification not in FAILING, explore.progress_line(i, len(campaign["slices"]), result)
