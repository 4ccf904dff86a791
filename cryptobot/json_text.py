"""JSON text fast: one encoder made once, called for many values (log lines, store columns).

`json.JSONEncoder.encode` builds a new C encoder on every call; a backtest encodes thousands of
small values (an event line each, the store's JSON columns). `json_encoder` gives the same text
as `json.JSONEncoder(**options).encode`, with the interpreter's C encoder made once (where the
interpreter has one).
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any


def json_encoder(**options: Any) -> Callable[[Any], str]:
    """`json.JSONEncoder(**options).encode`, the same text. Made once only without the
    circular-reference check (its record of the objects being encoded is per call) and without
    `indent`; otherwise `JSONEncoder.encode` itself."""
    encoder = json.JSONEncoder(**options)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or encoder.indent is not None or encoder.check_circular:
        return encoder.encode
    escape = (json.encoder.encode_basestring_ascii if encoder.ensure_ascii
              else json.encoder.encode_basestring)
    encode = make(None, encoder.default, escape, None, encoder.key_separator,
                  encoder.item_separator, encoder.sort_keys, encoder.skipkeys,
                  encoder.allow_nan)
    return lambda value: "".join(encode(value, 0))
