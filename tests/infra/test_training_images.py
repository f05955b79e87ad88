"""Training images: the region -> registry table is the SageMaker Python SDK's own.

The SDK resolves images from ``image_uri_config/pytorch.json`` (``sagemaker.image_uris``);
``scripts/generate_training_images.py`` reads that file from the pinned SDK wheel. The
``network`` tests download the wheel from PyPI and re-derive the table; the others check the
synthesized mapping offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app_config import CLOUD_PYTORCH_VERSIONS, EDGE_PYTORCH_VERSIONS
from tests.infra.rendering import resources_of_type

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "generate_training_images.py"
# Regions the SDK lists that the hand-written table missed (issue 8), and the account
# pytorch.json gives ap-northeast-3.
NEWER_REGIONS = ("ap-east-2", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "mx-central-1")


def _mapping(synthesized, stage: str = "dev") -> dict[str, str]:
    template = synthesized.template_json(f"{stage}/Pipeline")
    (mapping,) = [
        m for name, m in template.get("Mappings", {}).items() if name.startswith("DlcRegistry")
    ]
    return {region: entry["account"] for region, entry in mapping.items()}


def _image_account(synthesized, stage: str, region: str) -> str:
    template = synthesized.template_json(f"{stage}/Pipeline")
    (training,) = resources_of_type(template, "Custom::TrainingJob").values()
    image = training["Properties"]["ImageUri"]
    assert "Fn::FindInMap" in json.dumps(image)
    return _mapping(synthesized, stage)[region]


@pytest.fixture(scope="module")
def sdk_table() -> dict[str, dict[str, str]]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--json"], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_registry_accounts_of_regions_the_sdk_lists(dev) -> None:
    accounts = _mapping(dev)
    assert accounts["ap-northeast-3"] == "364406365360"
    assert accounts["eu-west-1"] == "763104351884"
    for region in NEWER_REGIONS:
        assert region in accounts, region
    assert _image_account(dev, "dev", "ap-northeast-3") == "364406365360"


@pytest.mark.network
def test_synthesized_mapping_is_the_sdks_table(dev, sdk_table) -> None:
    """dev trains with PyTorch 1.8: its mapping must be exactly the SDK's for 1.8."""
    assert _mapping(dev) == sdk_table["1.8"]


@pytest.mark.network
def test_every_accepted_version_and_region_resolves(sdk_table) -> None:
    from edge_constructs.training_job import images

    for version in sorted(set(EDGE_PYTORCH_VERSIONS) | set(CLOUD_PYTORCH_VERSIONS)):
        assert images.registry_accounts(version) == sdk_table[version], version
        assert images.image_tag(version, "ml.m5.xlarge").startswith(version)


@pytest.mark.network
def test_generated_module_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_a_known_region_the_sdk_does_not_list_fails_at_synth(tmp_path) -> None:
    from tests.infra.conftest import synthesize

    with pytest.raises(ValueError, match=r"region xx-nowhere-1 has no SageMaker PyTorch 1\.8"):
        synthesize(tmp_path, account="111122223333", region="xx-nowhere-1")
