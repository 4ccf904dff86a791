"""`json_encoder`: the text `json.JSONEncoder(**options).encode` gives, whatever the value."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from cryptobot.json_text import json_encoder

VALUES = [
    {"b": 1, "a": [1.5, -0.0, 1e-07, 2.5e+16, None, True, "x\u00e9\"\\\n"],
     "c": {"z": {}, "y": []}},
    [float("nan"), float("inf"), -math.inf, 10**30, "", "\u2603"],
    "just text \u00fc",
    3.141592653589793,
    {"when": datetime(2024, 8, 5, tzinfo=UTC), "n": 1},  # default=str only
    {1: "int key", 2.5: "float key", None: "none key"},  # sorted: TypeError, as json's
]


@pytest.mark.parametrize("options", [
    {}, {"sort_keys": True}, {"default": str, "sort_keys": True, "check_circular": False},
    {"ensure_ascii": False}, {"separators": (",", ":")},
])
def test_the_same_text_as_json_dumps(options):
    encode = json_encoder(**options)
    for value in VALUES:
        try:
            expected = json.JSONEncoder(**options).encode(value)
        except TypeError:
            with pytest.raises(TypeError):
                encode(value)
            continue
        assert encode(value) == expected


def test_nan_refused_when_asked_and_a_cycle_caught_when_checked():
    with pytest.raises(ValueError):
        json_encoder(allow_nan=False)([float("nan")])
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(ValueError):
        json_encoder()(cycle)
