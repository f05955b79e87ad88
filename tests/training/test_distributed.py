"""Data-parallel training over Gloo with two local processes, described by the environment
variables SageMaker sets on each host (aws/sagemaker-training-toolkit ``environment.py``:
``SM_HOSTS`` as a JSON list, ``SM_CURRENT_HOST``, ``SM_NUM_GPUS``; the PyTorch container sets
``MASTER_ADDR`` / ``MASTER_PORT``, aws/sagemaker-pytorch-training-toolkit ``training.py``).

- two hosts train one model: each reads half the data, both end with the same weights and
  log the same metrics, and only the leader writes the model dir and the ONNX export;
- two processes with batch B compute what one process computes with batch 2B on the same
  shuffle (DDP averages the gradients), for a model without BatchNorm or dropout;
- a wrong ``SM_*`` value is one clear error.
"""

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import TRAIN_SCRIPT, TRAINING_SRC, sagemaker_env

HOSTS = ["algo-1", "algo-2"]
EPOCH = re.compile(r"epoch=\d+ .*")
DIGEST = re.compile(r"weights digest ([0-9a-f]{64})")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def host_env(base: dict[str, str], host: str, port: int, hosts: list[str]) -> dict[str, str]:
    return {
        **base,
        "SM_HOSTS": json.dumps(hosts),
        "SM_CURRENT_HOST": host,
        "SM_NUM_GPUS": "0",
        # On SageMaker "algo-1" resolves; here the leader is this machine.
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


def run_hosts(commands: list[list[str]], envs: list[dict[str, str]]) -> list[tuple[int, str]]:
    """Start every host at once (they rendezvous), wait for all; (exit code, log) each."""
    processes = [
        subprocess.Popen(
            command,
            env=env,
            cwd=TRAINING_SRC,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command, env in zip(commands, envs, strict=True)
    ]
    results = []
    for process in processes:
        try:
            out, _ = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        results.append((process.returncode, out))
    return results


def test_two_hosts_train_one_model_and_only_the_leader_writes(small_digits, tmp_path):
    port = free_port()
    args = [
        sys.executable, str(TRAIN_SCRIPT),
        "--arch", "squeezenet1_1",
        "--input-shape", "1,3,32,32",
        "--pretrained", "false",
        "--batch-size", "4",
        "--epochs", "2",
        "--val-fraction", "0.25",
        "--export-onnx", "true",
    ]  # fmt: skip
    envs, commands = [], []
    for host in HOSTS:
        base = sagemaker_env(
            model_dir=tmp_path / host / "model",
            output_data_dir=tmp_path / host / "output",
            train=small_digits,
        )
        envs.append(host_env(base, host, port, HOSTS))
        commands.append([*args, "--checkpoint-dir", str(tmp_path / host / "checkpoints")])
    (leader_code, leader_log), (follower_code, follower_log) = run_hosts(commands, envs)
    assert leader_code == 0, leader_log
    assert follower_code == 0, follower_log

    # 3 classes x 8 images, 2 per class held out: 18 training images, 9 per host.
    for log in (leader_log, follower_log):
        assert "9 of 18 training images on this host" in log, log
    assert "rank 0 of 2 (gloo" in leader_log
    assert "rank 1 of 2 (gloo" in follower_log
    # Metrics summed over hosts: both hosts log the same lines.
    assert EPOCH.findall(leader_log) == EPOCH.findall(follower_log)
    assert len(EPOCH.findall(leader_log)) == 2
    # Same weights on both hosts after training.
    leader_digest, follower_digest = DIGEST.findall(leader_log), DIGEST.findall(follower_log)
    assert len(leader_digest) == 1
    assert leader_digest == follower_digest

    leader, follower = tmp_path / HOSTS[0], tmp_path / HOSTS[1]
    assert sorted(p.name for p in (leader / "model").iterdir()) == ["labels.json", "model.pth"]
    assert sorted(p.name for p in (leader / "output").iterdir()) == [
        "labels.json",
        "metadata.json",
        "model.onnx",
    ]
    assert (leader / "checkpoints" / "checkpoint.pt").is_file()
    written = [p for p in follower.rglob("*") if p.is_file()]
    assert written == [], f"the follower wrote {written}"
    assert "is not the leader: writes nothing" in follower_log

    # The leader's model.pth holds the weights both hosts agree on.
    model = torch.jit.load(str(leader / "model" / "model.pth"))
    sys.path.insert(0, str(TRAINING_SRC))
    try:
        from edge_training.distributed import weights_digest
    finally:
        sys.path.remove(str(TRAINING_SRC))
    assert weights_digest(model) == leader_digest[0]


WORKER = """
import json, logging, sys
import torch
sys.path.insert(0, {src!r})
from edge_training import distributed, engine

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
torch.set_num_threads(1)
topology = distributed.topology_from_env()
distributed.initialize(topology)
generator = torch.Generator().manual_seed(0)
images = torch.randn(24, 3, 4, 4, generator=generator)
targets = torch.randint(0, 3, (24,), generator=generator)
dataset = torch.utils.data.TensorDataset(images, targets)
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Flatten(), torch.nn.Linear(48, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)
)
sampler = distributed.train_sampler(dataset, topology, seed=5)
if sampler is None:  # one process: the same shuffle, whole
    sampler = torch.utils.data.distributed.DistributedSampler(
        dataset, num_replicas=1, rank=0, shuffle=True, seed=5
    )
loader = torch.utils.data.DataLoader(dataset, batch_size={batch}, sampler=sampler)
optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
engine.fit(model, loader, None, optimizer, torch.device("cpu"), 3,
           engine.Checkpoints(None, {{}}), "constant", topology)
if topology.is_leader:
    torch.save(model.state_dict(), {out!r})
distributed.shutdown(topology)
"""


def _worker(tmp_path: Path, batch: int, name: str) -> tuple[list[str], Path]:
    out = tmp_path / f"{name}.pt"
    script = WORKER.format(src=str(TRAINING_SRC), batch=batch, out=str(out))
    return [sys.executable, "-c", script], out


def _losses(log: str) -> list[float]:
    return [float(m) for m in re.findall(r"train_loss=(\S+)", log)]


def test_two_processes_compute_what_one_computes_with_twice_the_batch(tmp_path):
    port = free_port()
    base = sagemaker_env()
    command, two_out = _worker(tmp_path, 4, "two")
    envs = [host_env(base, host, port, HOSTS) for host in HOSTS]
    results = run_hosts([command, command], envs)
    for code, log in results:
        assert code == 0, log

    one_command, one_out = _worker(tmp_path, 8, "one")
    ((code, one_log),) = run_hosts([one_command], [base])
    assert code == 0, one_log

    two, one = torch.load(two_out), torch.load(one_out)
    assert two.keys() == one.keys()
    for key in one:
        assert torch.allclose(two[key], one[key], atol=1e-5), key
    assert not torch.equal(one["1.weight"], torch.zeros_like(one["1.weight"]))
    assert _losses(results[0][1]) == pytest.approx(_losses(one_log), abs=1e-4)
    assert len(_losses(one_log)) == 3


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SM_HOSTS": "algo-1,algo-2"}, "is not a JSON list of host names"),
        ({"SM_HOSTS": '["algo-1","algo-1"]'}, "names a host twice"),
        (
            {"SM_HOSTS": '["algo-1","algo-2"]', "SM_CURRENT_HOST": "algo-3"},
            "SM_CURRENT_HOST='algo-3' is not one of SM_HOSTS",
        ),
        (
            {"SM_HOSTS": '["algo-1","algo-2"]', "SM_CURRENT_HOST": "algo-2", "SM_NUM_GPUS": "x"},
            "SM_NUM_GPUS='x' is not a GPU count",
        ),
    ],
)
def test_a_wrong_cluster_description_is_one_clear_error(
    train_entry_point, tmp_path, monkeypatch, caplog, env, message
):
    for name in ("SM_HOSTS", "SM_CURRENT_HOST", "SM_NUM_GPUS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = train_entry_point.main(["--model-dir", str(tmp_path / "model")])
    assert code == 2
    assert message in caplog.text
    assert not (tmp_path / "model").exists()


def test_one_host_is_not_distributed(training_modules):
    from edge_training.distributed import topology_from_env

    single = topology_from_env({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1"})
    assert not single.distributed and single.is_leader
    assert not topology_from_env({}).distributed
    second = topology_from_env(
        {"SM_HOSTS": '["algo-1","algo-2","algo-3"]', "SM_CURRENT_HOST": "algo-3"}
    )
    assert (second.rank, second.world_size, second.is_leader) == (2, 3, False)
    assert second.backend == "gloo"
