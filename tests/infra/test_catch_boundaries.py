"""Configuration boundaries, each accepted exactly at its limit and refused one step past it
(issue 14, "Tests that catch what matters": an off-by-one there passed every test before).

The configuration is read as ``cdk synth -c key=value`` gives it: cdk.json's context plus the
one key, through ``load_config``, the function app.py calls.

- ``input_shape``: H and W from 32 to 4096 (the pipeline's own bound, stated in its error; the
  component reads any shape from ``metadata.json``, so this is the only place it is enforced).
- ``nucleus_version``: at least 2.6.0, the first nucleus whose IPC authorization matches a
  ``*`` inside an ``accessControl`` resource, which the inference component's recipe uses
  (aws-greengrass-nucleus: ``src/main/java/com/aws/greengrass/authorization/WildcardTrie.java``
  is at tag v2.6.0 and not at v2.5.6, where only a resource of exactly ``*`` matched more than
  itself). The recipe's nucleus dependency says the same (``>=2.6.0``).
"""

from __future__ import annotations

import pytest

from app_config import ConfigError, PipelineConfig, load_config
from tests.infra.conftest import CDK_JSON_CONTEXT


def config_with(key: str, value: str) -> PipelineConfig:
    return load_config({**CDK_JSON_CONTEXT, key: value}, "dev")


@pytest.mark.parametrize("side", [32, 4096])
def test_an_input_side_at_either_limit_is_accepted(side: int) -> None:
    shape = f"1,3,{side},{side}"
    assert config_with("input_shape", shape).input_shape == (1, 3, side, side)


@pytest.mark.parametrize("side", [31, 4097])
def test_an_input_side_one_past_either_limit_is_refused(side: int) -> None:
    shape = f"1,3,{side},{side}"
    with pytest.raises(ConfigError) as caught:
        config_with("input_shape", shape)
    assert str(caught.value) == (
        f"invalid configuration input_shape='{shape}': expected N,C,H,W with N=1, C=3 and "
        "32 <= H, W <= 4096, e.g. 1,3,224,224"
    )


def test_the_documented_minimum_nucleus_is_accepted() -> None:
    assert config_with("nucleus_version", "2.6.0").nucleus_version == "2.6.0"


@pytest.mark.parametrize("version", ["2.5.0", "2.5.6", "2.5.99"])
def test_a_2_5_nucleus_is_refused_naming_the_minimum(version: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_with("nucleus_version", version)
    message = str(caught.value)
    assert message.startswith(f"invalid configuration nucleus_version='{version}': ")
    assert "must be at least 2.6.0" in message


@pytest.mark.parametrize("version", ["3.0.0", "3.1.2"])
def test_a_nucleus_past_the_recipes_range_is_refused(version: str) -> None:
    """The inference recipe asks for ``aws.greengrass.Nucleus`` ``>=2.6.0 <3.0.0``. The
    nucleus's resolver adds every dependency's requirement as a constraint whatever its type
    (aws-greengrass-nucleus v2.18.2 componentmanager/DependencyResolver.java,
    resolveComponentDependencies), so a deployment pinning 3.x could resolve no nucleus."""
    with pytest.raises(ConfigError) as caught:
        config_with("nucleus_version", version)
    message = str(caught.value)
    assert message.startswith(f"invalid configuration nucleus_version='{version}': ")
    assert "below 3.0.0" in message
