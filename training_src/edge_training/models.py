"""torchvision classifiers by name, ImageNet weights when available, and a generic new head.

Works with both torchvision APIs: ``weights=`` (0.13+) and ``pretrained=`` (0.9, the
PyTorch 1.8 training image that traces models for Neo edge targets).
"""

import logging
import os
import re
import sys
from typing import List, NamedTuple, Optional

import torch
import torchvision
from torch import nn

from .errors import TrainingInputError

LOGGER = logging.getLogger(__name__)

_NEW_API = hasattr(torchvision.models, "get_model_weights")


class BuiltModel(NamedTuple):
    model: nn.Module
    pretrained: bool  # ImageNet weights were loaded
    categories: Optional[List[str]]  # ImageNet class names, when the weights carry them


def classification_archs() -> List[str]:
    """Names of the torchvision classification model builders."""
    models = torchvision.models
    if hasattr(models, "list_models"):
        return sorted(models.list_models(module=models))
    return sorted(  # old torchvision: every public lower-case callable is a builder
        name
        for name in dir(models)
        if name.islower() and not name.startswith("_") and callable(getattr(models, name))
    )


def _weights_enum(arch):
    """The default ImageNet weights (new API) or None."""
    try:
        return torchvision.models.get_model_weights(arch).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return None


def weights_url(arch: str) -> Optional[str]:
    """Where torchvision downloads ``arch``'s default ImageNet weights from, if it has any."""
    if _NEW_API:
        weights = _weights_enum(arch)
        return weights.url if weights is not None else None
    # torchvision < 0.13: a ``model_urls`` dict per module, keyed by arch with a few spelling
    # differences (shufflenet_v2_x0_5 is "shufflenetv2_x0.5").
    builder = getattr(torchvision.models, arch)
    urls = getattr(sys.modules.get(builder.__module__), "model_urls", {})
    if arch in urls:
        return urls[arch]
    matches = [url for key, url in urls.items() if _squash(key) == _squash(arch)]
    return matches[0] if len(matches) == 1 else None


def _squash(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())


def cached_weights_path(url):
    """The file ``torch.hub.load_state_dict_from_url`` reads instead of downloading ``url``."""
    filename = os.path.basename(url.split("?", 1)[0])
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def build_model(arch: str, pretrained: str) -> BuiltModel:
    """Build ``arch`` with its ImageNet head; ``pretrained`` is auto, true or false.

    auto: use ImageNet weights if they are already in the local torch hub cache, else random
    init with a warning (nothing is downloaded). true: require them (download allowed).
    """
    if arch not in classification_archs():
        raise TrainingInputError(
            f"unknown --arch {arch!r}: not a torchvision classification model (e.g. vgg16, "
            "resnet18, mobilenet_v3_small)"
        )
    builder = getattr(torchvision.models, arch)
    url = weights_url(arch)
    use_weights = False
    if pretrained == "true":
        if url is None:
            raise TrainingInputError(
                f"--pretrained true: torchvision has no ImageNet weights for {arch}"
            )
        use_weights = True
    elif pretrained == "auto":
        if url is not None and os.path.isfile(cached_weights_path(url)):
            use_weights = True
        else:
            LOGGER.warning(
                "--pretrained auto: no cached ImageNet weights for %s (%s); starting from a "
                "RANDOM initialisation (pass --pretrained true to download them)",
                arch,
                cached_weights_path(url) if url else "torchvision has none",
            )
    categories = None
    try:
        if _NEW_API:
            weights = _weights_enum(arch) if use_weights else None
            model = builder(weights=weights)
            if weights is not None:
                categories = weights.meta.get("categories")
        else:  # torchvision < 0.13
            model = builder(pretrained=use_weights)
    except OSError as exc:  # no network (a VPC-only job), a full disk, a partial download
        raise TrainingInputError(
            f"cannot get ImageNet weights for {arch} from {url}: {exc}"
        ) from None
    if use_weights:
        LOGGER.info("loaded ImageNet weights for %s", arch)
    return BuiltModel(model, use_weights, list(categories) if categories else None)


def _parent_and_leaf(model, name):
    parent = model
    parts = name.split(".")
    for part in parts[:-1]:
        parent = getattr(parent, part)
    return parent, parts[-1]


def classifier_head(model):
    """(qualified name, layer) of the final Linear/Conv2d: the classification head.

    fc (resnet, regnet, shufflenet, inception), classifier[-1] (vgg, alexnet, mobilenet,
    efficientnet, convnext), classifier (densenet), classifier[1] conv (squeezenet), heads.head
    (vit), head (swin)... all are the last Linear or Conv2d in registration order.
    """
    layers = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv2d))
    ]
    if not layers:
        raise TrainingInputError("found no Linear/Conv2d classifier head to replace")
    return layers[-1]


def replace_head(model, num_classes):
    """Give ``model`` a freshly initialised head with ``num_classes`` outputs; return its name."""
    name, old = classifier_head(model)
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(
            old.in_channels,
            num_classes,
            kernel_size=old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            bias=old.bias is not None,
        )
    parent, leaf = _parent_and_leaf(model, name)
    setattr(parent, leaf, new)
    if hasattr(model, "num_classes"):
        model.num_classes = num_classes
    return name


def freeze_all_but(model, head_name):
    """Train only the head: every other parameter stops requiring gradients."""
    prefix = head_name + "."
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith(prefix)


def logits_of(output):
    """Inception/GoogLeNet return (logits, aux...) in train mode; everything else a tensor."""
    return output[0] if isinstance(output, tuple) else output


def check_forward(model, arch, input_shape, num_classes=None):
    """Run one eval forward pass at ``input_shape``; fail clearly if ``arch`` cannot take it.

    Returns the number of outputs (classes), which must be ``num_classes`` when given.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = logits_of(model(torch.zeros(*input_shape)))
    except RuntimeError as exc:
        raise TrainingInputError(
            "--arch {} does not accept --input-shape {}: {}".format(
                arch,
                ",".join(str(dim) for dim in input_shape),
                str(exc).splitlines()[0],
            )
        ) from None
    finally:
        model.train(was_training)
    if num_classes is None and output.dim() == 2:
        num_classes = output.shape[1]
    expected = (input_shape[0], num_classes)
    if tuple(output.shape) != expected:
        raise TrainingInputError(
            f"--arch {arch} outputs shape {tuple(output.shape)}, not {expected}: not a classifier"
        )
    return num_classes
