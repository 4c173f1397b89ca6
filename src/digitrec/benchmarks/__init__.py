"""Benchmarks against peers measured in the same run; timing lives here, never in tests."""
