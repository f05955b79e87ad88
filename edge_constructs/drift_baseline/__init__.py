"""``Custom::DriftBaseline``: the training job's drift baseline, published per model id."""
