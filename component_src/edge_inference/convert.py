"""``python -m edge_inference.convert IMAGE... [-o OUT] [--model-dir DIR]``: images to ``.npy``.

Writes the tensor the component itself would feed the model for each image (the tutorial's
input format: float32, ``[1, 3, H, W]`` for the default model), with the component's own code
(:class:`edge_inference.inputs.InputDecoder`), for devices fed by other tools. The model's
``metadata.json`` (``--model-dir``) sets shape, layout and normalization; without it the
contract's defaults apply (``docs/CONTRACTS.md``: 224 x 224, ImageNet).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, NoReturn, Optional

import numpy as np

from edge_inference.inputs import IMAGE_SUFFIXES, BadInput, InputDecoder
from edge_inference.model import ModelError, ModelInfo, read_metadata

PROG = "python -m edge_inference.convert"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[1])
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help=".jpg/.jpeg/.png")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="the .npy file (one IMAGE) or an existing folder (default: IMAGE's name with "
        ".npy, in the current folder)",
    )
    parser.add_argument(
        "--model-dir", type=Path, help="model package whose metadata.json sets the preprocessing"
    )
    parser.add_argument(
        "--max-image-pixels", type=int, default=50_000_000, metavar="N", help=argparse.SUPPRESS
    )
    return parser


class ConvertError(Exception):
    """One line for the user."""


def destinations(images: List[Path], output: Optional[Path]) -> List[Path]:
    """Where each image's tensor goes; :class:`ConvertError` for an output that cannot work."""
    if output is None:
        return [Path.cwd() / (image.stem + ".npy") for image in images]
    if output.is_dir():
        return [output / (image.stem + ".npy") for image in images]
    if len(images) > 1:
        raise ConvertError(f"-o {output}: with several images, -o must be an existing folder")
    if output.suffix.lower() != ".npy":
        raise ConvertError(f"-o {output}: not a folder, and a file name must end in .npy")
    if not output.parent.is_dir():
        raise ConvertError(f"-o {output}: folder {output.parent} does not exist")
    return [output]


def convert(image: Path, dest: Path, decoder: InputDecoder) -> None:
    if image.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConvertError(f"{image}: not a JPEG or PNG file name ({', '.join(IMAGE_SUFFIXES)})")
    if not image.is_file():
        raise ConvertError(f"{image}: no such file")
    try:
        tensor = decoder.load(image)
    except BadInput as err:
        raise ConvertError(f"{image}: {err}") from err
    tmp = dest.with_name("." + dest.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            np.save(handle, tensor, allow_pickle=False)
        os.replace(tmp, dest)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ConvertError(f"cannot write {dest}: {err.strerror or err}") from err


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        info = read_metadata(args.model_dir) if args.model_dir else ModelInfo("convert")
        if args.model_dir and not (args.model_dir / "metadata.json").is_file():
            raise ConvertError(f"--model-dir {args.model_dir}: no metadata.json there")
        targets = destinations(args.images, args.output)
    except (ConvertError, ModelError) as err:
        sys.stderr.write(f"{PROG}: error: {err}\n")
        return 2
    decoder = InputDecoder(info, args.max_image_pixels)
    failed = 0
    for image, dest in zip(args.images, targets):
        try:
            convert(image, dest, decoder)
        except ConvertError as err:
            sys.stderr.write(f"{PROG}: error: {err}\n")
            failed += 1
            continue
        sys.stdout.write(f"{dest}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
