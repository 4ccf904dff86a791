"""cryptobot: buys the rebound after a crypto liquidation cascade, when the macro backdrop
allows it."""

__version__ = "0.1.0"
