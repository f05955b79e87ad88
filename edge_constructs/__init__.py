"""Reusable CDK constructs of the edge-AI pipeline: one folder per capability, each with its
construct (``construct.py``) and, where it has one, its Lambda runtime code (``runtime/``)."""
