"""Labelled captures into a training channel (issue 15): ``python -m capture_channel``."""
