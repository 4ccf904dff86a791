"""Exchange adapters: ccxt REST (configured by `ccxt_factory`), streams, and loopback fakes."""
