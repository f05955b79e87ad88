"""The drift baseline: what the trained model's answers look like on its validation set.

Written into ``metadata.json`` (the job's output data, beside ``model.onnx``) under
``"baseline"``. The pipeline's ``Custom::DriftBaseline`` copies it to
``fleet/baselines/<model id>.json`` for each class built from the job, and the fleet's drift
alarm compares each ring's confidence buckets with it (``device_contract/drift.py``,
docs/OBSERVABILITY.md "Drift"). The record:

``{"images": N, "confidence_edges": [...], "confidence": {bucket: count},
"classes": {label: count}}``: counts of the validation images by top-1 confidence bucket (every
bucket listed) and by predicted label.

The buckets are the device's (``device_contract/messages.py`` ``CONFIDENCE_EDGES``): the
SageMaker container runs ``training_src/`` alone, without ``device_contract``, so the edges are
copied here and a test holds the two equal (tests/training/test_baseline.py).
"""

import json
import os

import torch

from .models import logits_of

#: ``device_contract.messages.CONFIDENCE_EDGES`` (a test holds them equal).
CONFIDENCE_EDGES = (0.0, 0.5, 0.7, 0.9)
RECORD = "baseline"


def bucket_names(edges=CONFIDENCE_EDGES):
    """``"0-0.5"``, ..., ``"0.9-1"``: the device's bucket names for ``edges``."""
    return [f"{low:g}-{high:g}" for low, high in zip(edges, (*edges[1:], 1.0))]


def bucket_of(score, edges=CONFIDENCE_EDGES):
    """Index of the bucket ``score`` falls in: the last edge at or below it."""
    index = 0
    for i, low in enumerate(edges):
        if score >= low:
            index = i
    return index


def compute(model, loader, class_names, device="cpu"):
    """The baseline record of ``model`` on ``loader`` (batches of (images, targets))."""
    names = bucket_names()
    confidence = {name: 0 for name in names}
    classes = {}
    images = 0
    model.eval()
    with torch.no_grad():
        for batch, _ in loader:
            probabilities = torch.softmax(logits_of(model(batch.to(device))).float(), dim=1)
            scores, indices = probabilities.max(dim=1)
            for score, index in zip(scores.tolist(), indices.tolist()):
                confidence[names[bucket_of(score)]] += 1
                label = class_names[index]
                classes[label] = classes.get(label, 0) + 1
                images += 1
    return {
        "images": images,
        "confidence_edges": list(CONFIDENCE_EDGES),
        "confidence": confidence,
        "classes": dict(sorted(classes.items())),
    }


def record_in_metadata(metadata_path, record):
    """Add ``record`` as ``"baseline"`` to metadata.json (informational: docs/CONTRACTS.md)."""
    with open(metadata_path) as handle:
        metadata = json.load(handle)
    metadata[RECORD] = record
    partial = metadata_path + ".partial"
    with open(partial, "w") as handle:
        json.dump(metadata, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(partial, metadata_path)
