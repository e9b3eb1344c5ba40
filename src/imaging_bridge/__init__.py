"""Imaging Bridge entry point: the composition root and the ``imaging-bridge`` command."""
