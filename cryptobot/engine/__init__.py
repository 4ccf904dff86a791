"""The one loop backtest, paper and live share, and what it owns: trade state, risk, and the
ports it talks to (broker, gate, recorder)."""
