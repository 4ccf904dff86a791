"""The live broker: ccxt orders with stops on the exchange, its state, the user-data stream,
the safety rails, reconciliation and the restore after a restart."""
