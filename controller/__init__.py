"""Telemetry and the Predictive Resource Allocator. Never imports models or emulation.

Importing this package does not import os-ken: the pure core (spec compilation, routing, cookies,
the REST WSGI app) is usable and testable without it; only :mod:`controller.app` and
:mod:`controller.launcher` need os-ken.
"""
