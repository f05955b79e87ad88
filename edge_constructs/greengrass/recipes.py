"""Greengrass V2 recipes of the three components, as plain dicts (tokens allowed in values).

Kept free of constructs so tests can validate them directly against the recipe schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from device_contract import settings, topics
from device_contract.topics import PREDICTIONS_SUFFIX as PREDICTIONS_SUFFIX  # the stack's output
from edge_constructs import neo_targets
from edge_constructs.greengrass.public_components import TOKEN_EXCHANGE, TOKEN_EXCHANGE_RANGE

RECIPE_FORMAT = "2020-01-25"
PUBLISHER = "edge-ai-pipeline"
INSTALL_TIMEOUT_SECONDS = 900
STARTUP_TIMEOUT_SECONDS = 120
NUCLEUS = "aws.greengrass.Nucleus"
# The oldest nucleus whose IPC authorization accepts a "*" inside an accessControl resource
# (authorization/WildcardTrie.java first appears at tag v2.6.0; before it only a resource of
# exactly "*" matched more than itself: AuthorizationHandler.ANY_REGEX at v2.5.6).
MIN_NUCLEUS_VERSION = "2.6.0"
# The next major nucleus may change what the components rely on; the recipe stops below it.
NUCLEUS_VERSION_CEILING = "3.0.0"

# Greengrass platform architectures of the Neo targets whose output runs on a Linux device
# (one table, edge_constructs/neo_targets.py; app_config derives each class's platform from it).
NEO_ARCHITECTURES = neo_targets.architectures()


def linux_platform(architecture: str | None) -> dict[str, str]:
    platform = {"os": "linux"}
    if architecture:
        platform["architecture"] = architecture
    return platform


def model_recipe(
    *,
    name: str,
    version: str,
    description: str,
    artifact_uri: str,
    architecture: str | None,
) -> dict[str, Any]:
    """The model: an unzipped package, nothing to run (the inference component reads it).

    ``Read: ALL``: the inference component runs as the component default user (``ggc_user``),
    but the model's files stay owned by the nucleus's user (root): the nucleus hands a
    component's artifacts to its run-as user only when one of its lifecycle steps runs a
    command (aws-greengrass-nucleus v2.18.2 ``lifecyclemanager/GenericExternalService.java``
    ``run`` -> ``updateComponentPathOwner`` -> ``RunWithPathOwnershipHandler.updateOwner``), and
    this component has none. ``Read: OWNER`` would be ``r--r-----`` root:root
    (``componentmanager/models/Permission.toFileSystemPermission``): unreadable to ggc_user.
    The model holds no secret (it is the same for every device of the stage), so reading it is
    open to every local user rather than giving the model a lifecycle just to change owners.
    """
    return {
        "RecipeFormatVersion": RECIPE_FORMAT,
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentDescription": description,
        "ComponentPublisher": PUBLISHER,
        "Manifests": [
            {
                "Platform": linux_platform(architecture),
                "Artifacts": [
                    {"Uri": artifact_uri, "Unarchive": "ZIP", "Permission": {"Read": "ALL"}}
                ],
                "Lifecycle": {},
            }
        ],
    }


# Switch DLR's phone-home off inside the venv before anything imports dlr (DLR's
# dlr/counter/phone_home.py reads counter/ccm_config.json: neo-ai/neo-ai-dlr on GitHub).
# No braces: Greengrass would read "{...:...}" as a recipe variable.
_DISABLE_PHONE_HOME = (
    "import importlib.util, json, pathlib; "
    "spec = importlib.util.find_spec('dlr'); "
    "p = pathlib.Path(spec.submodule_search_locations[0]) / 'counter'; "
    "p.mkdir(exist_ok=True); "
    "(p / 'ccm_config.json').write_text(json.dumps(dict(enable_phone_home=False)))"
)


def runtime_marker(version: str) -> str:
    """File the runtime's Install writes last, inside the venv, once the venv is complete."""
    return f"{{work:path}}/venv/.installed-{version}"


def runtime_recipe(
    *,
    name: str,
    version: str,
    requirements_uri: str,
    requirements_file: str,
    architecture: str | None = None,
    dlr: bool = True,
) -> dict[str, Any]:
    """Our runtime: a virtual environment with pinned DLR and the component's dependencies.

    It owns its interpreter, so the deployment does not depend on the public variant.DLR's
    Python or on its nucleus-version range. The venv lives in this component's work folder.

    Installed once per version: the nucleus runs Install at every launch (every boot;
    lifecycle/Lifecycle.java) unless ``Skipif`` holds, and ``exists PATH`` holds when the file
    exists (lifecycle/GenericExternalService.java, shouldSkip, SKIP_COMMAND_REGEX). The marker
    names the version and is written last, inside the venv, after the requirements are
    installed and phone-home is off (that step fails if dlr is missing); a rebuild starts by
    deleting the venv, marker included. So a half-built venv (a failed install, a power cut)
    is never taken as complete, a completed one is skipped at boot without network, and a new
    version (new requirements) rebuilds. The venv's path does not change, so the inference
    component's launcher (:func:`bundled_launcher`) keeps pointing at the right interpreter.
    """
    # Every path is quoted: the nucleus substitutes {work:path} and {artifacts:path} as they
    # are, and runs the script with sh -c, so a Greengrass root with a space would split
    # (tests/sim/test_root_with_space.py). Skipif takes the rest of its line as the path
    # (GenericExternalService SKIP_COMMAND_REGEX "(exists|onpath) +(.+)"): it stays unquoted.
    venv = '"{work:path}/venv"'
    python = '"{work:path}/venv/bin/python"'
    runtime_label = "DLR" if dlr else "ONNX Runtime"
    install = " && ".join(
        [
            "python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))'"
            " || (echo 'DLR runtime needs python3 >= 3.9 on the device' >&2; exit 1)",
            f"rm -rf {venv}",
            f"python3 -m venv {venv}",
            f"{python} -m pip install --disable-pip-version-check --no-cache-dir "
            f'-r "{{artifacts:path}}/{requirements_file}"',
        ]
        + ([f'{python} -c "{_DISABLE_PHONE_HOME}"'] if dlr else [])
        + [f'touch "{runtime_marker(version)}"']
    )
    return {
        "RecipeFormatVersion": RECIPE_FORMAT,
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentDescription": f"Python virtual environment with pinned {runtime_label}, "
        "NumPy, Pillow and the AWS IoT Device SDK for the inference component",
        "ComponentPublisher": PUBLISHER,
        "Manifests": [
            {
                "Platform": linux_platform(architecture),
                "Artifacts": [{"Uri": requirements_uri, "Permission": {"Read": "OWNER"}}],
                "Lifecycle": {
                    "Install": {
                        "Skipif": f"exists {runtime_marker(version)}",
                        "Script": install,
                        "Timeout": INSTALL_TIMEOUT_SECONDS,
                        "RequiresPrivilege": False,
                    }
                },
            }
        ],
    }


def bundled_launcher(runtime_name: str) -> str:
    """Shell prefix that runs the bundled runtime's interpreter (``exec``: SIGTERM reaches it)."""
    return f'exec "{{{runtime_name}:work:path}}/venv/bin/python"'


def variant_dlr_launcher(architecture: str | None) -> str:
    """Shell prefix for the public variant.DLR environment, activated as its own components do
    (a conda env on x86_64, a venv on ARM). That env lacks Pillow: JPEG/PNG input needs it
    installed there; .npy input works as is."""
    root = "{variant.DLR:configuration:/MLRootPath}"
    if architecture == "amd64":
        activate = f'. "{root}/greengrass_ml_dlr_conda/bin/activate" greengrass_ml_dlr_conda'
    else:
        activate = f'. "{root}/greengrass_ml_dlr_venv/bin/activate"'
    return f"{activate} && exec python3"


def inference_configuration(
    *,
    top_k: int,
    topic_prefix: str,
    runtime: str = "dlr",
    capture_bucket: str = "",
    capture_prefix: str | None = None,
    batch_size: int = 1,
    inference_threads: int = 0,
) -> dict[str, Any]:
    """Default configuration of the inference component: the settings table's recipe keys and
    defaults (device_contract/settings.py), with the stage's ``top_k``, topic and ``runtime``
    (``dlr`` or ``onnx``), and where captures go (``capture_bucket``, ``capture_prefix``:
    ``device_contract.captures.device_prefix``; no bucket: they stay on the device).
    ``batch_size`` and ``inference_threads`` (a device class's) are in the recipe only when they
    differ from the component's defaults, so that a class which sets neither keeps its recipe,
    and its component version, as they were."""
    captures: dict[str, Any] = {"CaptureBucket": capture_bucket}
    if capture_prefix is not None:
        captures["CapturePrefix"] = capture_prefix
    tuning = {
        key: value
        for key, value in (("BatchSize", batch_size), ("InferenceThreads", inference_threads))
        if value != settings.setting(key).default
    }
    return settings.default_configuration(
        tuning,
        Runtime=runtime,
        TopK=top_k,
        PublishTopic=topics.publish_topic(topic_prefix),
        MetricsTopic=topics.metrics_topic(topic_prefix),
        **captures,
    )


def access_control_topic(publish_topic: str) -> str:
    """The accessControl resource that authorizes ``publish_topic`` on every nucleus >= 2.6.0:
    a ``*`` wildcard in place of ``{iot:thingName}``, since the nucleus does not interpolate
    configuration by default. Why, with the nucleus sources: docs/CORE_DEVICE.md, "The
    component's accessControl wildcard".
    """
    return topics.access_control_resource(publish_topic)


def inference_recipe(
    *,
    name: str,
    version: str,
    artifact_uri: str,
    unarchived_name: str,
    launcher: str,
    model_name: str,
    model_version: str,
    model_dir: str,
    runtime_name: str,
    runtime_version: str,
    configuration: Mapping[str, Any],
    architecture: str | None,
) -> dict[str, Any]:
    """The DLR inference component from component_src/ (see component_src/README.md)."""
    resources = [
        access_control_topic(configuration["PublishTopic"]),
        access_control_topic(configuration["MetricsTopic"]),
    ]
    return {
        "RecipeFormatVersion": RECIPE_FORMAT,
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentDescription": "Classifies images dropped into its input folder with the "
        "Neo-compiled model and publishes the predictions to AWS IoT Core",
        "ComponentPublisher": PUBLISHER,
        "ComponentDependencies": {
            # The accessControl wildcard below needs nucleus 2.6.0 (see access_control_topic).
            NUCLEUS: {
                "VersionRequirement": f">={MIN_NUCLEUS_VERSION} <{NUCLEUS_VERSION_CEILING}",
                "DependencyType": "SOFT",
            },
            model_name: {"VersionRequirement": f"={model_version}", "DependencyType": "HARD"},
            runtime_name: {"VersionRequirement": f"={runtime_version}", "DependencyType": "HARD"},
            # Credentials for the capture uploads: the nucleus runs its token-exchange service
            # only for a deployment that depends on it (aws-greengrass-nucleus tes/README.md,
            # "by default disabled"); the developer guide's token-exchange-service-component
            # page lists its versions as 2.0.x.
            TOKEN_EXCHANGE: {
                "VersionRequirement": TOKEN_EXCHANGE_RANGE,
                "DependencyType": "HARD",
            },
        },
        "ComponentConfiguration": {
            "DefaultConfiguration": {
                **configuration,
                "accessControl": {
                    "aws.greengrass.ipc.mqttproxy": {
                        f"{name}:mqttproxy:1": {
                            "policyDescription": "Publish predictions and metrics; AWS IoT Core "
                            "keeps each device to its own topics",
                            "operations": ["aws.greengrass#PublishToIoTCore"],
                            "resources": resources,
                        }
                    }
                },
            }
        },
        "Manifests": [
            {
                "Platform": linux_platform(architecture),
                "Artifacts": [
                    {"Uri": artifact_uri, "Unarchive": "ZIP", "Permission": {"Read": "OWNER"}}
                ],
                "Lifecycle": {
                    "Setenv": {
                        "PYTHONPATH": f"{{artifacts:decompressedPath}}/{unarchived_name}",
                        "PYTHONUNBUFFERED": "1",
                    },
                    "Run": {
                        "Script": f"{launcher} -m edge_inference --ipc "
                        f'--model-dir "{model_dir}" --state-dir "{{work:path}}/state"',
                        "RequiresPrivilege": False,
                    },
                },
            }
        ],
    }
