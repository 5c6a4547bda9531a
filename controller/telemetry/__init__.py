"""Telemetry: statistics polling, counters to rates, aggregation (pure), and sample types."""
