"""A simulated Greengrass core device, grounded in the nucleus's source (see issue 8)."""
