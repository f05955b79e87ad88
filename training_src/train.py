"""SageMaker PyTorch training entry point (``sagemaker_program=train.py``).

Fine-tunes a torchvision classifier (``--arch``, VGG16 by default) on the image folder in the
``train`` channel (``<channel>/<class>/<image>``), validates on the ``validation`` channel or on
a held-out ``--val-fraction``, and writes a traced TorchScript ``model.pth`` + ``labels.json``
to the model dir for SageMaker Neo. Without a ``train`` channel it exports the stock model.

Runs unchanged outside SageMaker with ``SM_MODEL_DIR`` / ``SM_CHANNEL_*`` set, e.g.::

    SM_MODEL_DIR=out SM_CHANNEL_TRAIN=data/train python train.py --arch resnet18 --epochs 3

On a SageMaker job of several hosts (``SM_HOSTS``) it trains data-parallel with DDP, each host
on its shard, and only the leader writes the model (edge_training/distributed.py).

Bad data or hyperparameters end with one logged ``ERROR`` line and exit code 2.
Python 3.6 compatible (the PyTorch 1.8 image that traces models for Neo edge targets).
"""

import logging
import os
import sys

import torch
from edge_training.config import parse_args
from edge_training.data import (
    ImageSamples,
    check_images,
    eval_transform,
    scan_image_folder,
    split_holdout,
    train_transform,
)
from edge_training.distributed import (
    SINGLE,
    device_for,
    eval_sampler,
    initialize,
    shutdown,
    topology_from_env,
    train_sampler,
    weights_digest,
)
from edge_training.engine import Checkpoints, fit, seed_everything, seed_worker
from edge_training.errors import TrainingInputError, one_line
from edge_training.export import (
    INPUT_NAME,
    METADATA_FILE,
    ONNX_FILE,
    write_model_dir,
    write_output_data_dir,
)
from edge_training.models import build_model, check_forward, freeze_all_but, replace_head

LOGGER = logging.getLogger("train")


def load_data(args):
    """Scan and check the channels; return (class names, train samples, validation samples)."""
    class_names, train_samples = scan_image_folder(args.train, "train")
    if len(class_names) < 2:
        raise TrainingInputError(
            f"train channel {args.train} has only one class ({class_names[0]!r}): "
            "a classifier needs at least two"
        )
    val_samples = []
    if args.validation:
        val_classes, val_samples = scan_image_folder(args.validation, "validation")
        unknown = sorted(set(val_classes) - set(class_names))
        if unknown:
            raise TrainingInputError(
                "validation channel has classes that are not in the train channel: {}".format(
                    ", ".join(unknown)
                )
            )
        if args.val_fraction:
            LOGGER.warning("a validation channel is given: ignoring --val-fraction")
    elif args.val_fraction > 0:
        train_samples, val_samples = split_holdout(train_samples, args.val_fraction, args.seed)
    check_images(train_samples + val_samples)
    LOGGER.info(
        "%d classes, %d training and %d validation images",
        len(class_names),
        len(train_samples),
        len(val_samples),
    )
    return class_names, train_samples, val_samples


def make_loader(samples, class_to_index, transform, args, shuffle, topology=SINGLE):
    """``--batch-size`` images per step on each host; on several hosts each reads its shard
    (training: ``DistributedSampler``, evaluation: an unpadded shard)."""
    dataset = ImageSamples(samples, class_to_index, transform)
    if shuffle:
        sampler = train_sampler(dataset, topology, args.seed)
    else:
        sampler = eval_sampler(dataset, topology)
    shard = len(sampler) if sampler is not None else len(dataset)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        # A last batch of one image breaks BatchNorm on 1x1 feature maps; it is a different
        # image every epoch, so dropping it loses nothing. Every host's shard has the same
        # length, so every host drops alike and runs the same number of steps.
        drop_last=shuffle and shard > args.batch_size,
        num_workers=args.num_workers,
        worker_init_fn=seed_worker,
        # Shuffling draws from torch's global RNG: seeded at start, saved in checkpoints, so
        # a resumed job continues the same sequence.
        pin_memory=torch.cuda.is_available(),
    )


def train_model(args, topology=SINGLE, data=None):
    """Fine-tune on the train channel; return (trained model, class names)."""
    class_names, train_samples, val_samples = data or load_data(args)
    built = build_model(args.arch, args.pretrained)
    model = built.model
    head = replace_head(model, len(class_names))
    if args.freeze_features:
        freeze_all_but(model, head)
    check_forward(model, args.arch, args.input_shape, len(class_names))

    class_to_index = {name: index for index, name in enumerate(class_names)}
    shape, resize = args.input_shape, args.resize_shorter
    train_loader = make_loader(
        train_samples,
        class_to_index,
        train_transform(shape, resize, args.horizontal_flip),
        args,
        shuffle=True,
        topology=topology,
    )
    val_loader = None
    if val_samples:
        val_loader = make_loader(
            val_samples,
            class_to_index,
            eval_transform(shape, resize),
            args,
            shuffle=False,
            topology=topology,
        )
    device = device_for(topology)
    model.to(device)
    optimizer = torch.optim.SGD(
        [parameter for parameter in model.parameters() if parameter.requires_grad],
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
    )
    identity = {
        "arch": args.arch,
        "classes": class_names,
        "input_shape": list(shape),
        "freeze_features": args.freeze_features,
    }
    checkpoints = Checkpoints(args.checkpoint_dir, identity)
    LOGGER.info(
        "training %s on %s for %d epochs (%d of %d training images on this host)",
        args.arch,
        device,
        args.epochs,
        len(train_loader.sampler),
        len(train_samples),
    )
    fit(
        model,
        train_loader,
        val_loader,
        optimizer,
        device,
        args.epochs,
        checkpoints,
        args.lr_schedule,
        topology,
    )
    if topology.distributed:
        LOGGER.info("weights digest %s", weights_digest(model))
    return model, class_names


def stock_model(args):
    """No train channel: the model as torchvision ships it (ImageNet head)."""
    LOGGER.warning("no train channel: exporting the stock %s model unchanged", args.arch)
    if args.validation:
        LOGGER.warning("no train channel: the validation channel is not used")
    built = build_model(args.arch, args.pretrained)
    model = built.model.eval()
    outputs = check_forward(model, args.arch, args.input_shape)
    if built.categories and len(built.categories) == outputs:
        class_names = built.categories
    else:
        class_names = [f"class_{index}" for index in range(outputs)]
    return model, class_names


def check_int8_inputs(args):
    """Before any training: --quantize int8 calibrates on the train channel and gates on
    validation images, so both must be there."""
    if args.quantize != "int8":
        return
    if not args.train:
        raise TrainingInputError(
            "--quantize int8 calibrates on the training data: it needs a train channel"
        )
    if not args.validation and not args.val_fraction > 0:
        raise TrainingInputError(
            "--quantize int8 is gated on held-out images: it needs a validation channel or "
            "--val-fraction > 0"
        )


def quantize_and_gate(args, class_names, data):
    """int8 ONNX beside the FP32 one, its numbers in metadata.json, then the gate."""
    from edge_training import quantize  # numpy + onnxruntime, needed only here

    _, train_samples, val_samples = data
    settings = quantize.settings_for(args.int8_format)
    transform = eval_transform(args.input_shape, args.resize_shorter)
    class_to_index = {name: index for index, name in enumerate(class_names)}

    def tensors(samples):
        """One preprocessed image at a time: the gate's validation set can be large."""
        dataset = ImageSamples(samples, class_to_index, transform)
        return (dataset[i][0].unsqueeze(0).numpy() for i in range(len(dataset)))

    calibration = quantize.sample_calibration(
        train_samples, args.int8_calibration_images, args.seed
    )
    fp32_path = os.path.join(args.output_data_dir, ONNX_FILE)
    int8_path = os.path.join(args.output_data_dir, quantize.INT8_ONNX_FILE)
    LOGGER.info(
        "int8: static QDQ %s, per-channel, calibrated on %d training images",
        args.int8_format,
        len(calibration),
    )
    calibration_tensors = list(tensors(calibration))  # a few dozen: ORT's reader rewinds
    quantize.quantize_model(fp32_path, int8_path, calibration_tensors, settings, INPUT_NAME)
    report = quantize.compare(
        fp32_path,
        int8_path,
        tensors(val_samples),
        [class_to_index[name] for _, name in val_samples],
        INPUT_NAME,
    )
    record = quantize.gate_record(
        report,
        settings,
        args.int8_format,
        fp32_path,
        int8_path,
        len(calibration),
        args.max_int8_top1_drop,
    )
    # Written before the verdict: a failed gate leaves its numbers behind.
    quantize.record_in_metadata(os.path.join(args.output_data_dir, METADATA_FILE), record)
    LOGGER.info(
        "int8_top1=%.4f fp32_top1=%.4f int8_top1_drop=%.4f int8_top1_agreement=%.4f",
        report.int8_top1,
        report.fp32_top1,
        report.top1_drop,
        report.top1_agreement,
    )
    quantize.enforce(report, args.max_int8_top1_drop)


def write_baseline(args, model, class_names, data):
    """The drift baseline (edge_training/baseline.py) into metadata.json: the model's top-1
    confidence buckets and predicted classes on the whole validation set (the leader alone
    writes, so it runs on every validation image, not a shard)."""
    from edge_training import baseline

    _, _, val_samples = data
    class_to_index = {name: index for index, name in enumerate(class_names)}
    loader = make_loader(
        val_samples,
        class_to_index,
        eval_transform(args.input_shape, args.resize_shorter),
        args,
        shuffle=False,
    )
    device = next(model.parameters()).device
    record = baseline.compute(model, loader, class_names, device)
    baseline.record_in_metadata(os.path.join(args.output_data_dir, METADATA_FILE), record)
    LOGGER.info(
        "drift baseline: %d validation images, top-1 confidence buckets %s",
        record["images"],
        record["confidence"],
    )


def run(args, topology=SINGLE):
    seed_everything(args.seed)
    check_int8_inputs(args)
    data = None
    if args.train:
        data = load_data(args)
        model, class_names = train_model(args, topology, data)
    else:
        model, class_names = stock_model(args)
    if not topology.is_leader:
        # Every host holds the same weights (DDP): the leader alone writes them.
        LOGGER.info("host %s is not the leader: writes nothing", topology.current_host)
        return
    model_path = write_model_dir(model, class_names, args.input_shape, args.model_dir)
    if args.output_data_dir:
        write_output_data_dir(
            model,
            args.arch,
            model_path,
            args.input_shape,
            args.resize_shorter,
            args.output_data_dir,
            args.export_onnx,
        )
        if data is not None and data[2]:
            write_baseline(args, model, class_names, data)
        else:
            LOGGER.warning("no validation images: metadata.json gets no drift baseline")
    if args.quantize == "int8":
        quantize_and_gate(args, class_names, data)
    LOGGER.info("wrote %s", args.model_dir)


def configure_logging():
    """Log to stdout (SageMaker ships it to CloudWatch, where metric regexes read it)."""
    root = logging.getLogger()
    if not any(getattr(handler, "_edge_training", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler._edge_training = True
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(argv=None):
    """Return the exit code: 0, or 2 for bad data / hyperparameters."""
    configure_logging()
    try:
        args = parse_args(argv)
        topology = topology_from_env()
    except TrainingInputError as exc:
        LOGGER.error("%s", one_line(exc))
        return 2
    initialize(topology)
    try:
        run(args, topology)
    except TrainingInputError as exc:
        LOGGER.error("%s", one_line(exc))
        return 2
    finally:
        shutdown(topology)
    return 0


if __name__ == "__main__":
    sys.exit(main())
