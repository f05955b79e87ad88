"""Training loop, per-epoch metrics lines, and checkpoints for managed spot training."""

import logging
import math
import os
import random

import torch

from .distributed import SINGLE, agree_on_epoch, sum_over_hosts, wrap
from .models import logits_of

try:  # numpy is optional: seed it when it is there
    import numpy
except ImportError:  # pragma: no cover
    numpy = None

LOGGER = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


def seed_everything(seed):
    random.seed(seed)
    torch.manual_seed(seed)
    if numpy is not None:
        numpy.random.seed(seed % (2**32))
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def seed_worker(worker_id):
    """DataLoader ``worker_init_fn``: derive Python/numpy seeds from torch's per-worker seed."""
    seed = torch.initial_seed() % (2**32)
    random.seed(seed)
    if numpy is not None:
        numpy.random.seed(seed)


def format_metrics(epoch, train_loss, train_acc, val_loss=None, val_acc=None):
    """One line per epoch, parsed by ``training_src/metric_definitions.json``."""
    line = f"epoch={epoch} train_loss={train_loss:.4f} train_acc={train_acc:.4f}"
    if val_loss is not None:
        line += f" val_loss={val_loss:.4f} val_acc={val_acc:.4f}"
    return line


def epoch_lr(base_lr, schedule, epoch, epochs):
    """Learning rate of ``epoch`` (1-based): constant, or cosine-annealed per epoch.

    A pure function of the epoch, so a resumed job continues on the same curve.
    """
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))
    return base_lr


def run_epoch(model, loader, criterion, device, optimizer=None, topology=SINGLE):
    """One pass over ``loader``; trains when an optimizer is given. Returns (loss, accuracy),
    over every host's shard when distributed (so every host logs the same numbers)."""
    training = optimizer is not None
    model.train(training)
    total_loss, correct, seen = 0.0, 0, 0
    with torch.set_grad_enabled(training):
        for images, targets in loader:
            images, targets = images.to(device), targets.to(device)
            logits = logits_of(model(images))
            loss = criterion(logits, targets)
            if training:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            total_loss += float(loss.item()) * targets.size(0)
            correct += int((logits.argmax(dim=1) == targets).sum().item())
            seen += targets.size(0)
    total_loss, correct, seen = sum_over_hosts([total_loss, correct, seen], topology, device)
    return total_loss / max(seen, 1), correct / max(seen, 1)


class Checkpoints:
    """``<dir>/checkpoint.pt``, rewritten atomically after every epoch.

    SageMaker syncs the checkpoint folder with S3 for managed spot training and restores it
    when a job restarts: a checkpoint of the same model (``identity``: arch, classes, input
    shape, frozen features) is resumed; any other one is ignored with a warning.
    """

    def __init__(self, directory, identity):
        self.directory = directory
        self.identity = identity  # what must match to resume
        if directory:
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                LOGGER.warning("checkpoints disabled: cannot create %s (%s)", directory, exc)
                self.directory = None

    @property
    def path(self):
        return os.path.join(self.directory, CHECKPOINT_NAME) if self.directory else None

    def load(self, model, optimizer) -> int:
        """Restore model/optimizer/RNG state if a matching checkpoint exists; return its epoch."""
        if not self.path or not os.path.isfile(self.path):
            return 0
        state = torch.load(self.path, map_location="cpu")
        saved = {key: state.get(key) for key in self.identity}
        if state.get("format") != CHECKPOINT_FORMAT or saved != self.identity:
            LOGGER.warning("ignoring checkpoint %s: it belongs to another model", self.path)
            return 0
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        LOGGER.info("resumed from checkpoint %s after epoch %d", self.path, state["epoch"])
        return int(state["epoch"])

    def save(self, model, optimizer, epoch):
        """Write the checkpoint (the caller makes sure only one host does)."""
        if not self.path:
            return
        state = dict(self.identity)
        state.update(
            format=CHECKPOINT_FORMAT,
            epoch=epoch,
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            torch_rng=torch.get_rng_state(),
        )
        partial = self.path + ".partial"
        torch.save(state, partial)
        os.replace(partial, self.path)


def fit(
    model,
    train_loader,
    val_loader,
    optimizer,
    device,
    epochs,
    checkpoints,
    schedule,
    topology=SINGLE,
):
    """Train from the checkpointed epoch to ``epochs``; log a metrics line per epoch.

    Distributed (``topology``, see distributed.py): every host restores the same checkpoint,
    trains a DDP wrapper of ``model`` on its shard, evaluates ``model`` itself on its
    validation shard (DDP's forward syncs buffers: hosts with unequal shards would wait on
    each other), and only the leader writes checkpoints. ``model`` stays the bare module.
    """
    criterion = torch.nn.CrossEntropyLoss()
    start = agree_on_epoch(checkpoints.load(model, optimizer), topology, device)
    trained = wrap(model, device, topology)
    base_lr = optimizer.defaults["lr"]
    for epoch in range(start + 1, epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr(base_lr, schedule, epoch, epochs)
        sampler = getattr(train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # DistributedSampler: a new shuffle every epoch
            sampler.set_epoch(epoch)
        train_loss, train_acc = run_epoch(
            trained, train_loader, criterion, device, optimizer, topology
        )
        val_loss = val_acc = None
        if val_loader is not None:
            val_loss, val_acc = run_epoch(model, val_loader, criterion, device, None, topology)
        LOGGER.info(format_metrics(epoch, train_loss, train_acc, val_loss, val_acc))
        if topology.is_leader:
            checkpoints.save(model, optimizer, epoch)
