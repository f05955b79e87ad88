"""The main job's synth step keeps working for a user who has promoted a release: the job's
dev stage is its own (one ONNX class, nothing promoted), so the releases cdk.json holds for the
user's classes are not its to deploy. Found by the hostile review: before, ``scripts/main.sh``
ended in a ConfigError traceback ("releases.dev.default: no such device class") for anyone
who had promoted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from main_job.errors import MainJobError
from main_job.synth import synthesize_stage
from tests.infra.conftest import CDK_JSON_CONTEXT, JETSON_RELEASE, THREE_CLASSES


def test_a_promoted_release_in_cdk_json_does_not_stop_the_main_jobs_synth(tmp_path: Path) -> None:
    context = json.loads(json.dumps(CDK_JSON_CONTEXT))
    context["pipeline"]["device_classes"] = {"jetson": THREE_CLASSES["jetson"]}
    del context["stages"]["dev"]["thing_group"]
    context["releases"] = {"dev": {"jetson": JETSON_RELEASE}}
    out = synthesize_stage(tmp_path / "cdk.out", context)
    assert (out / "manifest.json").is_file()


def test_a_configuration_the_job_cannot_use_is_one_line_naming_it(tmp_path: Path) -> None:
    context = {**CDK_JSON_CONTEXT, "stages": {"dev": {"inference_top_k": 0}}}
    with pytest.raises(MainJobError, match=r"cdk.json does not fit .*inference_top_k=0"):
        synthesize_stage(tmp_path / "cdk.out", context)
