"""Column types: exact decimals for the ledger, on every database."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

_FLOAT_OR_NONE = {float, type(None)}


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC(38, 18) where the database has exact decimals; text on SQLite.

    SQLite's NUMERIC affinity silently turns values into binary floats, so there the decimal
    is kept as its exact text. Floats come in as their shortest repr, which reads back to the
    very same float: a stored trade reproduces `backtest --json` digit for digit.
    """

    impl = Numeric(38, 18)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(38, 18, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, Decimal):
            number = value
        else:
            as_float = float(value)
            if not math.isfinite(as_float):
                return None  # no database stores inf/nan portably; absent is the honest value
            text = repr(as_float)
            if dialect.name == "sqlite" and "e" not in text:
                return text  # str(Decimal(text)) is text itself here: no Decimal per number
            number = Decimal(text)
        return str(number) if dialect.name == "sqlite" else number

    def bind_column(self, values: list[Any], dialect: Dialect) -> list[Any]:
        """What the column type's bind processor makes of each value (`bulk_insert` sends
        these). On SQLite a column of finite floats and None whose reprs have no exponent, the
        common case, is their reprs in one pass: the very text each value gets on its own."""
        if (dialect.name == "sqlite" and set(map(type, values)) <= _FLOAT_OR_NONE
                and all(math.isfinite(value) for value in values if value is not None)):
            texts = [None if value is None else repr(value) for value in values]
            if not any("e" in text for text in texts if text is not None):
                return texts
        return list(map(self._cached_bind_processor(dialect), values))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


def to_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
