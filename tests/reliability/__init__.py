"""Reliability suites that produce figures (docs/RELIABILITY.md)."""
