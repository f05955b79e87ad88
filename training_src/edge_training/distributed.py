"""Data-parallel training across SageMaker hosts with ``torch.distributed`` (DDP).

SageMaker runs ``train.py`` once on every host of a training job and describes the cluster in
environment variables (aws/sagemaker-training-toolkit, ``src/sagemaker_training/environment.py``
``to_env_vars`` and ``mapping.to_env_vars``: each key upper-cased with an ``SM_`` prefix, lists
as JSON):

- ``SM_HOSTS``: ``["algo-1","algo-2"]``, every host of the job, sorted;
- ``SM_CURRENT_HOST``: this host's name, one of them;
- ``SM_NUM_GPUS``: GPUs on this host (``nvidia-smi --list-gpus``; 0 on CPU instances).

The leader is the first host (``environment.py`` ``get_master_hostname``: ``self._hosts[0]``).
The PyTorch container's launcher sets ``MASTER_ADDR`` to that host and ``MASTER_PORT`` to
``7777`` (aws/sagemaker-pytorch-training-toolkit, ``src/sagemaker_pytorch_container/training.py``
``_set_distributed_environment``); where they are unset we use the same values, so the script
also runs distributed under a launcher that does not set them.

One process per host: rank = the host's index in ``SM_HOSTS``, world size = the host count.
Backend: NCCL when the host has a GPU and CUDA works, else Gloo. Each host reads its shard of
the (fully replicated) channel through ``DistributedSampler``; gradients are averaged by DDP;
per-epoch metrics are summed over hosts so every host logs the same line; only the leader
writes ``model.pth``, ``labels.json``, the ONNX export and checkpoints.

Only APIs that PyTorch 1.8 has: ``init_process_group(init_method="env://", timeout=...)``,
``DistributedDataParallel(find_unused_parameters=...)``, ``DistributedSampler(seed=...)``,
``all_reduce``, ``barrier``.
"""

import datetime
import hashlib
import json
import logging
import os
from typing import List, NamedTuple

import torch
import torch.distributed as dist

from .errors import TrainingInputError

LOGGER = logging.getLogger(__name__)

MASTER_PORT = "7777"  # sagemaker-pytorch-training-toolkit's MASTER_PORT
# How long a host waits for the others (rendezvous, a collective). Hosts start within minutes
# of each other. A host that died fails the rest after this long: PyTorch's own default
# (torch/distributed/constants.py default_pg_timeout, 30 minutes, in 1.8 as today),
# stated here so that it is a decision and not an accident.
DEFAULT_TIMEOUT_SECONDS = 1800


class Topology(NamedTuple):
    hosts: List[str]
    current_host: str
    num_gpus: int

    @property
    def world_size(self) -> int:
        return len(self.hosts)

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_leader(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str:
        return "nccl" if self.num_gpus > 0 and torch.cuda.is_available() else "gloo"


SINGLE = Topology(hosts=["local"], current_host="local", num_gpus=0)


def topology_from_env(environ=None) -> Topology:
    """The cluster as SageMaker describes it; one local host when ``SM_HOSTS`` is unset."""
    env = os.environ if environ is None else environ
    raw_hosts = env.get("SM_HOSTS", "").strip()
    if not raw_hosts:
        return SINGLE
    try:
        hosts = json.loads(raw_hosts)
    except ValueError:
        hosts = None
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
        raise TrainingInputError(
            f'SM_HOSTS={raw_hosts!r} is not a JSON list of host names (e.g. ["algo-1","algo-2"])'
        )
    if len(set(hosts)) != len(hosts):
        raise TrainingInputError(f"SM_HOSTS={raw_hosts!r} names a host twice")
    current = env.get("SM_CURRENT_HOST", "").strip()
    if len(hosts) > 1 and current not in hosts:
        raise TrainingInputError(
            f"SM_CURRENT_HOST={current!r} is not one of SM_HOSTS {hosts}: cannot tell this "
            "host's rank"
        )
    raw_gpus = env.get("SM_NUM_GPUS", "0").strip() or "0"
    try:
        num_gpus = int(raw_gpus)
    except ValueError:
        num_gpus = -1
    if num_gpus < 0:
        raise TrainingInputError(f"SM_NUM_GPUS={raw_gpus!r} is not a GPU count")
    return Topology(hosts=hosts, current_host=current or hosts[0], num_gpus=num_gpus)


def initialize(topology: Topology, timeout_seconds=DEFAULT_TIMEOUT_SECONDS) -> None:
    """Join the process group (a no-op on one host)."""
    if not topology.distributed:
        return
    os.environ.setdefault("MASTER_ADDR", topology.hosts[0])
    os.environ.setdefault("MASTER_PORT", MASTER_PORT)
    LOGGER.info(
        "distributed training: host %s is rank %d of %d (%s, leader %s:%s)",
        topology.current_host,
        topology.rank,
        topology.world_size,
        topology.backend,
        os.environ["MASTER_ADDR"],
        os.environ["MASTER_PORT"],
    )
    dist.init_process_group(
        topology.backend,
        init_method="env://",
        world_size=topology.world_size,
        rank=topology.rank,
        timeout=datetime.timedelta(seconds=timeout_seconds),
    )


def shutdown(topology: Topology) -> None:
    if topology.distributed and dist.is_initialized():
        dist.destroy_process_group()


def device_for(topology: Topology) -> torch.device:
    """This process's device: its host's first GPU (one process per host), else the CPU."""
    if torch.cuda.is_available() and (topology.num_gpus > 0 or not topology.distributed):
        return torch.device("cuda", 0)
    return torch.device("cpu")


def wrap(model, device, topology: Topology):
    """The module to train with: DDP around ``model`` on several hosts, else ``model``.

    ``find_unused_parameters``: Inception and GoogLeNet (``aux_logits``) return auxiliary
    logits in train mode that the loss does not use; DDP would otherwise wait for their
    gradients forever. Other models skip the extra graph traversal it costs every step.
    """
    if not topology.distributed:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(
        model,
        device_ids=device_ids,
        find_unused_parameters=bool(getattr(model, "aux_logits", False)),
    )


def train_sampler(dataset, topology: Topology, seed: int):
    """This host's shard of the training set, reshuffled every epoch (``set_epoch``); None on
    one host (the DataLoader shuffles). Every host gets the same number of samples (the
    sampler pads with repeats), so every host runs the same number of steps."""
    if not topology.distributed:
        return None
    return torch.utils.data.distributed.DistributedSampler(
        dataset,
        num_replicas=topology.world_size,
        rank=topology.rank,
        shuffle=True,
        seed=seed,
    )


class ShardSampler(torch.utils.data.Sampler):
    """Indices ``rank, rank + world, ...``: an evaluation shard without the padding that
    ``DistributedSampler`` adds, so summed metrics count every image exactly once."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def eval_sampler(dataset, topology: Topology):
    if not topology.distributed:
        return None
    return ShardSampler(len(dataset), topology.rank, topology.world_size)


def sum_over_hosts(values, topology: Topology, device):
    """Element-wise sum of a list of numbers over all hosts (the list itself on one host)."""
    if not topology.distributed:
        return list(values)
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.tolist()]


def weights_digest(model) -> str:
    """SHA-256 of the parameters: equal on every host after DDP training (each host logs it,
    so a host that drifted shows in the logs). Buffers are left out: BatchNorm's running
    statistics are updated by each host's last forward, after DDP broadcast the leader's;
    the exported model carries the leader's."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        digest.update(name.encode("utf-8"))
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()


def agree_on_epoch(epoch: int, topology: Topology, device) -> int:
    """The epoch every host resumes from; raise if hosts restored different checkpoints
    (each host reads its copy of the checkpoint folder that SageMaker restored)."""
    if not topology.distributed:
        return epoch
    low = torch.tensor([float(epoch)], dtype=torch.float64, device=device)
    high = low.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    if low.item() != high.item():
        raise RuntimeError(
            f"hosts restored different checkpoints (epochs {int(low.item())} to "
            f"{int(high.item())}): delete the job's checkpoints or start a new job"
        )
    return epoch
