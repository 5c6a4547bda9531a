"""Traffic Pattern Profiler: series, forecasters, intervals, anomalies. Imports nothing of ours."""
