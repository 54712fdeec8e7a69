"""The refiner table both front doors check their options with."""

from __future__ import annotations

import pytest

from jr2net.commands.refiner import RefinerChoice
from jr2net.realtime.front_door import refiner_table


def test_the_geometric_path_alone_unless_refiners_are_given() -> None:
    assert refiner_table(None, "geometric") == {"geometric": None}
    dcnet = RefinerChoice("dcnet")
    assert refiner_table({"geometric": RefinerChoice(), "dcnet": dcnet}, "dcnet")["dcnet"] is dcnet


def test_a_default_refiner_that_is_not_offered_is_an_error() -> None:
    with pytest.raises(ValueError, match="'dcnet' is not among \\['geometric'\\]"):
        refiner_table(None, "dcnet")
