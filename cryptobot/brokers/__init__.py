"""Execution: the paper fill simulator (backtests and paper) and the live broker (live/)."""
