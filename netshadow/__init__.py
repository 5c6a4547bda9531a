"""netshadow: the command and the wiring between profiler, shadow networks and controller."""

__version__ = "0.1.0"
