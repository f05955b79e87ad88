"""On-device image classification for AWS IoT Greengrass V2 (see ``component_src/README.md``).

Watches an input folder, runs each image or tensor through a DLR or ONNX Runtime model exactly
once, and publishes the result to AWS IoT Core through Greengrass IPC (or prints it, locally).
Importing this package does no work; ``python -m edge_inference`` is the entry point.
"""

__version__ = "1.0.0"
