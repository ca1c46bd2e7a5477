"""The pure core: typed values, events, commands, the lifecycle table, reconcile.

Nothing in this package does I/O, reads a clock, draws random numbers or logs:
time and policy come in as parameters, decisions go out as data.
"""
