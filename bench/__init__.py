"""Benchmarks of codeer (issue 8): load data, stage throughput, overhead over the raw encoder."""
