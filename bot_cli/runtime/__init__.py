"""The async shell around the core: executes commands in order, maps outcomes to events."""
