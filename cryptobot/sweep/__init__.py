"""Parameter sweeps and walk-forward tests: many backtests of one engine, run on Dask.

grid.py reads and checks a grid file; job.py is what a Dask worker runs (one backtest of one
combination); cluster.py starts or joins the cluster; runner.py sends the combinations and
stores what comes back; walk_forward.py chooses on training windows and reports test windows.
Dask is imported only on this path (`cryptobot backtest` never loads it).
"""
