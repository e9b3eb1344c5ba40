"""Imaging Bridge domain: aggregates, value objects and domain errors.

Pure Python on top of ``eventsourcing.domain``: no I/O, no clock, no framework.
"""
