"""Data-parallel training throughput: two processes over Gloo vs one, on this machine.

    .venv/bin/python bench/distributed_training.py              # shufflenet_v2_x0_5, 64x64
    .venv/bin/python bench/distributed_training.py --arch resnet18 --steps 10

Each "host" is a local process with the environment SageMaker sets on a host of a two-host
job (``SM_HOSTS``, ``SM_CURRENT_HOST``, ``SM_NUM_GPUS``; ``MASTER_ADDR``/``MASTER_PORT`` as the
PyTorch container sets them) and one torch thread, i.e. one core each. It runs ``train.py``'s
own training loop (``edge_training.engine.fit`` with ``edge_training.distributed``) on
synthetic images for ``--epochs`` epochs of ``--steps`` steps of ``--batch-size`` images per
process, timed inside the process (start-up and rendezvous excluded).

Printed: images/s of one process (1 thread), of one process with 2 threads (the same cores as
the pair, for comparison), and of two processes together; the ratio two / one. On a real
cluster each host has its own cores and a network in between; here both share one machine's
memory bandwidth, so the ratio is a floor for the compute part and says nothing about the
network. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINING_SRC = ROOT / "training_src"


def worker(args: argparse.Namespace) -> None:
    """One host: train, print ``{"images": n, "seconds": s}`` (this process's share)."""
    sys.path.insert(0, str(TRAINING_SRC))
    import torch
    from edge_training import distributed, engine, models

    torch.set_num_threads(args.threads)
    topology = distributed.topology_from_env()
    distributed.initialize(topology)
    count = args.steps * args.batch_size * topology.world_size
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(count, 3, args.size, args.size, generator=generator)
    targets = torch.randint(0, 10, (count,), generator=generator)
    dataset = torch.utils.data.TensorDataset(images, targets)
    sampler = distributed.train_sampler(dataset, topology, seed=0)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, sampler=sampler, shuffle=sampler is None
    )
    built = models.build_model(args.arch, "false")
    models.replace_head(built.model, 10)
    optimizer = torch.optim.SGD(built.model.parameters(), lr=0.01, momentum=0.9)
    if topology.distributed:
        torch.distributed.barrier()
    start = time.perf_counter()
    engine.fit(
        built.model,
        loader,
        None,
        optimizer,
        torch.device("cpu"),
        args.epochs,
        engine.Checkpoints(None, {}),
        "constant",
        topology,
    )
    seconds = time.perf_counter() - start
    distributed.shutdown(topology)
    print(json.dumps({"images": len(loader) * args.batch_size * args.epochs, "seconds": seconds}))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(args: argparse.Namespace, hosts: int, threads: int) -> float:
    """Images/s of ``hosts`` processes together (the slowest one's time)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    base["OMP_NUM_THREADS"] = str(threads)
    names = [f"algo-{index + 1}" for index in range(hosts)]
    port = str(free_port())
    command = [
        sys.executable, __file__, "--worker",
        "--arch", args.arch, "--size", str(args.size), "--steps", str(args.steps),
        "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
        "--threads", str(threads),
    ]  # fmt: skip
    processes = []
    for name in names:
        env = dict(base)
        if hosts > 1:
            env.update(
                SM_HOSTS=json.dumps(names),
                SM_CURRENT_HOST=name,
                SM_NUM_GPUS="0",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
            )
        processes.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
    results = []
    for process in processes:
        out, err = process.communicate(timeout=1800)
        if process.returncode != 0:
            raise SystemExit(f"worker failed ({process.returncode}):\n{err.decode()}")
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    images = sum(r["images"] for r in results)
    return images / max(r["seconds"] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--arch", default="shufflenet_v2_x0_5")
    parser.add_argument("--size", type=int, default=64, help="image height and width")
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch per process")
    parser.add_argument("--batch-size", type=int, default=16, help="per process")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    one = run(args, hosts=1, threads=1)
    one_two_threads = run(args, hosts=1, threads=2)
    two = run(args, hosts=2, threads=1)
    shape = f"{args.size}x{args.size}"
    print(f"{args.arch} {shape}, batch {args.batch_size} per process, cpus {os.cpu_count()}")
    print(f"{'1 process, 1 thread':<28}{one:8.1f} images/s")
    print(f"{'1 process, 2 threads':<28}{one_two_threads:8.1f} images/s")
    print(f"{'2 processes (Gloo), 1 each':<28}{two:8.1f} images/s")
    print(f"2 processes / 1 process: {two / one:.2f}x")
    print(
        json.dumps(
            {
                "arch": args.arch,
                "size": args.size,
                "batch_per_process": args.batch_size,
                "one_process": round(one, 2),
                "one_process_two_threads": round(one_two_threads, 2),
                "two_processes": round(two, 2),
                "ratio_two_over_one": round(two / one, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
