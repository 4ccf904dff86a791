"""Trading strategies, loaded by import path from `strategy.path` in the config."""
