"""``python -m edge_inference.convert IMAGE... [-o OUT] [--model-dir DIR]``: images to ``.npy``.

Writes the tensor the component itself would feed the model for each image (the tutorial's
input format: float32, ``[1, 3, H, W]`` for the default model), with the component's own code
(:class:`edge_inference.inputs.InputDecoder`), for devices fed by other tools. The model's
``metadata.json`` (``--model-dir``) sets shape, layout and normalization; without it the
contract's defaults apply (``docs/CONTRACTS.md``: 224 x 224, ImageNet).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, NoReturn, Optional

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
    """Where each image's tensor goes; :class:`ConvertError` for an output that cannot work,
    or for two images whose tensors would land on one file (the last would silently win)."""
    if output is None:
        return _distinct(images, [Path.cwd() / (image.stem + ".npy") for image in images])
    if _is_dir(output):
        return _distinct(images, [output / (image.stem + ".npy") for image in images])
    if len(images) > 1:
        raise ConvertError(f"-o {output}: with several images, -o must be an existing folder")
    if output.suffix.lower() != ".npy":
        raise ConvertError(f"-o {output}: not a folder, and a file name must end in .npy")
    if not output.parent.is_dir():
        raise ConvertError(f"-o {output}: folder {output.parent} does not exist")
    return [output]


def _is_dir(path: Path) -> bool:
    """``Path.is_dir``, False too for a name the OS refuses (too long: ENAMETOOLONG)."""
    try:
        return stat.S_ISDIR(path.stat().st_mode)
    except OSError:
        return False


def _distinct(images: List[Path], dests: List[Path]) -> List[Path]:
    first: Dict[Path, Path] = {}
    for image, dest in zip(images, dests):
        key = Path(os.path.abspath(dest))
        if key in first:
            raise ConvertError(
                f"{first[key]} and {image} would both be written to {dest}: convert them in "
                "separate calls with different -o"
            )
        first[key] = image
    return dests


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _not_a_file(image: Path) -> Optional[str]:
    """Why ``image`` cannot be read as a file, or None when it is a regular file."""
    try:
        mode = image.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as err:
        return f"cannot read it: {err.strerror or err}"
    if stat.S_ISREG(mode):
        return None
    kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
    return f"{kind}, not an image file"


def convert(image: Path, dest: Path, decoder: InputDecoder) -> None:
    if image.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConvertError(f"{image}: not a JPEG or PNG file name ({', '.join(IMAGE_SUFFIXES)})")
    problem = _not_a_file(image)
    if problem:
        raise ConvertError(f"{image}: {problem}")
    try:
        tensor = decoder.load(image)
    except BadInput as err:
        raise ConvertError(f"{image}: {err}") from err
    # A short random temporary name: ".<dest name>.tmp" is longer than NAME_MAX (255 bytes)
    # for an image whose own name fits.
    tmp: Optional[str] = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".convert-", suffix=".npy.tmp", dir=str(dest.parent))
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, tensor, allow_pickle=False)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a tensor is not a secret
        os.replace(tmp, str(dest))
    except OSError as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
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
    decoder = InputDecoder(info, args.max_image_pixels, limit_name="--max-image-pixels")
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
