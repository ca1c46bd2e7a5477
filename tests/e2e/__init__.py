"""End-to-end tests: the paper venue and `bot run` as real processes, killed with SIGKILL.

`harness` starts them as an operator would (`bot paper serve`, `bot run`, `bot enter`) and checks
DESIGN.md's four invariants through the paper venue's own view and the state directory.
"""
