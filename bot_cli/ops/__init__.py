"""The operator's operations: what `bot enter`, `adopt`, `recover`, `pending drop`, `cancel`, `close`
and `status` do, as functions over a config and a state dir that return results.

The CLI parses arguments and renders what these return (and the exit codes); the Python API
shares ``enter``, ``checks`` and ``journal``, the signal inbox and the demo ``checks``. Nothing
here reads a terminal or prints a result: a question to the operator is a callback (the one
line announcing an in-process paper venue goes to stderr, as every command says it).

    journal   the journal and the archive as an operator sees them (reads only)
    checks    an entry as asked for, checked against the symbol's filters and mark price
    enter     placing a checked entry: hand it to a running daemon, or send and follow it
    adopt     a part of a position no entry holds made an entry of its own, and its legs
    recover   the reconciliation as a one-shot, and its dry-run plan
    drop      forgetting entries, and cancelling what a forced drop leaves working
    exit      an operator's cancel and close, through the core
    status    is a daemon running, and what is exposed
"""
