"""Helpers for ``train.py``: the SageMaker PyTorch training entry point.

Everything here must stay importable on Python 3.6 with PyTorch 1.8 / torchvision 0.9 (the
SageMaker image that traces models for Neo edge targets) as well as on current PyTorch.
"""
