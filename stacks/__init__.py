"""Stacks: each only wires constructs together."""
