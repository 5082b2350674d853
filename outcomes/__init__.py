"""Instrument scoring, periods and the metric definitions of shared/domain/metrics.md."""
