"""What drives the engine: the backtest (with its quiet-candle skipping) and the stream session
that paper and live share."""
