"""Errors of the core.

InvalidTransition  an event with no row in the lifecycle table; the state is unchanged.
"""


class InvalidTransition(Exception):
    """An event that the lifecycle table has no row for."""
