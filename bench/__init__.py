"""Benchmarks and evaluations run against the real local servers (`make bench`)."""
