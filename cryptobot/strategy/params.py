"""A strategy's parameters: declared once, typed, bounded and documented, validated from
the config's `[strategy.params]` table.

    class Params(cryptobot.strategy.Params):
        spike_body_atr: float = param(1.5, gt=0, le=20, doc="spike body >= this x ATR")

Values are strict (a boolean is true or false, not "yes"), defaults are checked against the
bounds too, and every parameter needs `param(...)` with its documentation; an unknown key is an
error that names the strategy and the key.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, field in cls.model_fields.items():
            if not field.description:
                raise TypeError(f"{cls.__name__}.{name}: declare it with "
                                f"param(default, doc=...): every parameter says what it does")

    @classmethod
    def documented(cls) -> list[tuple[str, Any, str]]:
        """(name, default, doc) of every parameter, in declaration order."""
        return [(name, field.default, field.description or "")
                for name, field in cls.model_fields.items()]


def param(default: Any, *, doc: str, ge: float | None = None, gt: float | None = None,
          le: float | None = None, lt: float | None = None) -> Any:
    """A parameter with its default, bounds and one line of documentation."""
    return Field(default, description=doc, ge=ge, gt=gt, le=le, lt=lt)
