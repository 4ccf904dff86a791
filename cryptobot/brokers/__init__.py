"""Execution: the Broker protocol and its implementations (paper simulator; live elsewhere)."""

from cryptobot.brokers.base import Broker, client_id

__all__ = ["Broker", "client_id"]
