"""device_contract is the one place for what the device and the cloud side agree on.

Each side is checked against the contract (recipe, component CLI and validation, README,
docs/CONTRACTS.md, edge_follow, component names, the shipped zip), and then the contract is
edited in ONE place, in a copy on a fresh interpreter's path, and every side follows.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

import device_contract
from device_contract import messages, names, settings, topics
from edge_constructs.greengrass import recipes
from edge_follow import render
from tests.infra.conftest import CDK_JSON_CONTEXT, REPO_ROOT, THREE_CLASSES
from tests.infra.rendering import component_recipes, resources_of_type
from tests.infra.rendering import render as render_token

COMPONENT_SRC = REPO_ROOT / "component_src"
if str(COMPONENT_SRC) not in sys.path:
    sys.path.insert(0, str(COMPONENT_SRC))

from edge_inference import cli, config  # noqa: E402

NAMESPACE = "com.example.edgeai"

PREDICTION = messages.Prediction(
    input="cat.jpg",
    top=(messages.Score(281, "tabby", 0.91), messages.Score(282, "tiger cat", 0.05)),
    latency_ms=71.3,
    inference_ms=66.0,
    model="vgg16-3f2a",
    runtime="dlr",
    timestamp="2026-01-01T12:00:00.000+00:00",
)
FAILURE = messages.Failure(
    input="broken.jpg",
    error="cannot decode image",
    model="vgg16-3f2a",
    runtime="dlr",
    timestamp="2026-01-01T12:00:01.000+00:00",
)


def generated_block(path: Path, name: str) -> str:
    """The text between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``."""
    found = re.search(
        rf"<!-- generated: {re.escape(name)} -->\n(.*?)<!-- end generated -->",
        path.read_text(encoding="utf-8"),
        re.S,
    )
    assert found, f"{path}: no generated block {name}"
    return found.group(1)


# -- documents -------------------------------------------------------------------------------


def test_contracts_doc_prints_the_schema_generated_from_the_message_types() -> None:
    block = generated_block(
        REPO_ROOT / "docs" / "CONTRACTS.md", "device_contract.messages.json_schema"
    )
    text = block.strip().removeprefix("```json").removesuffix("```")
    assert json.loads(text) == messages.json_schema(), (
        "docs/CONTRACTS.md: paste the output of python -c 'import json, device_contract.messages "
        "as m; print(json.dumps(m.json_schema(), indent=2))'"
    )


def test_component_readme_table_is_the_settings_table() -> None:
    block = generated_block(COMPONENT_SRC / "README.md", "device_contract.settings.markdown_table")
    assert block == settings.markdown_table(), (
        "component_src/README.md: paste the output of python -c 'import device_contract.settings "
        'as s; print(s.markdown_table(), end="")\''
    )


def test_readme_example_messages_are_the_contracts_messages() -> None:
    readme = (COMPONENT_SRC / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Result messages", 1)[1].split("\n## ", 1)[0]
    examples = re.findall(r"```json\n(.*?)```", section, re.S)
    parsed = [messages.parse(json.loads(example)) for example in examples]
    assert [type(m) for m in parsed] == [messages.Prediction, messages.Failure]


# -- messages --------------------------------------------------------------------------------


def test_key_names_every_field_of_every_message() -> None:
    fields = {
        f.name for cls in (*messages.MESSAGES, messages.Score) for f in dataclasses.fields(cls)
    }
    keys = {v for k, v in vars(messages.Key).items() if k.isupper()}
    assert keys == fields


def test_message_round_trips_byte_for_byte() -> None:
    for message in (PREDICTION, FAILURE):
        text = message.to_json()
        assert messages.parse(text) == message
        assert messages.parse(text.encode()).to_json() == text
        # What the outbox does: JSON to disk, read back, encoded by the publisher.
        assert messages.encode(json.loads(json.dumps(message.to_dict()))) == text


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"top": []}, "Prediction.top must hold at least 1"),
        (
            {"top": [{"index": 1, "label": "a", "score": 1.5}]},
            "Prediction.top[0].score must be at most 1",
        ),
        (
            {"top": [{"index": True, "label": "a", "score": 0.5}]},
            "Prediction.top[0].index must be integer",
        ),
        ({"latency_ms": "7"}, "Prediction.latency_ms must be number"),
        ({"latency_ms": -1}, "Prediction.latency_ms must be at least 0"),
        ({"extra": 1}, "unknown extra"),
    ],
)
def test_a_message_off_the_schema_is_refused_saying_what(
    change: dict[str, Any], problem: str
) -> None:
    with pytest.raises(messages.MessageError, match=re.escape(problem)):
        messages.parse({**PREDICTION.to_dict(), **change})


def test_a_missing_key_is_named() -> None:
    raw = FAILURE.to_dict()
    del raw["runtime"]
    with pytest.raises(messages.MessageError, match="Failure: missing runtime"):
        messages.parse(raw)


def test_follow_renders_a_message_built_from_the_type() -> None:
    topic = topics.publish_topic("edge-ai").replace(topics.THING_NAME_VARIABLE, "cam-1")
    line = render.render("edge-ai", topic, PREDICTION.to_json().encode(), as_json=False)
    assert not line.malformed
    assert (
        line.text
        == f"{PREDICTION.timestamp}  cam-1  cat.jpg  tabby 0.910, tiger cat 0.050  71.3 ms"
    )
    failed = render.render("edge-ai", topic, FAILURE.to_json().encode(), as_json=False)
    assert failed.text.endswith("cam-1  broken.jpg  ERROR cannot decode image")
    assert (
        json.loads(
            render.render("edge-ai", topic, PREDICTION.to_json().encode(), as_json=True).text
        )
        == PREDICTION.to_dict()
    )


# -- topics ----------------------------------------------------------------------------------


def test_every_topic_spelling_is_the_same_layout() -> None:
    template = topics.publish_topic("fleet")
    assert template == "fleet/{iot:thingName}/predictions"
    thing_topic = template.replace(topics.THING_NAME_VARIABLE, "cam-1")
    assert render.topic_matches(render.topic_filter("fleet"), thing_topic)
    assert render.thing_name("fleet", thing_topic) == "cam-1"
    assert recipes.access_control_topic(template) == "fleet/*/predictions"
    # The IoT policy's resource admits the thing's topic (trailing * as IoT matches it).
    assert thing_topic.startswith(topics.thing_topics("fleet", "cam-1")[:-1])
    assert config.resolve_topic(settings.setting("PublishTopic").default, "cam-1") == (
        f"{topics.DEFAULT_TOPIC_PREFIX}/cam-1/{topics.PREDICTIONS_SUFFIX}"
    )


def test_core_device_policy_topics_follow_the_contracts_layout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cloud IoT policy grants the topics ``topics.thing_topics`` lays out, so a change of
    layout in the contract reaches the policy (issue 14: one place to edit)."""
    from edge_constructs.core_device import device_policies

    def policy_topics() -> set[str]:
        document = device_policies.core_device_policy_document(
            name_prefix="edge", publish_topic_prefix="fleet", role_alias_arn="arn:alias"
        ).render()
        found: set[str] = set()
        for statement in document["Statement"]:
            resources = statement["Resource"]
            for resource in [resources] if isinstance(resources, str) else resources:
                if ":topic/" in resource:
                    found.add(resource.split(":topic/", 1)[1])
        return found

    own = device_policies.OWN_THING
    assert topics.thing_topics("fleet", own) in policy_topics()
    monkeypatch.setattr(topics, "thing_topics", lambda prefix, thing: f"{prefix}/v2/{thing}/#")
    assert "fleet/v2/" + own + "/#" in policy_topics()


# -- settings --------------------------------------------------------------------------------


def test_recipe_default_configuration_is_the_tables_recipe_keys() -> None:
    built = recipes.inference_configuration(top_k=3, topic_prefix="fleet", runtime="onnx")
    table = {s.key: s.default for s in settings.SETTINGS if s.in_recipe}
    assert list(built) == list(table)  # the order too: the recipe's JSON, and version, follow it
    assert built == {
        **table,
        "TopK": 3,
        "Runtime": "onnx",
        "PublishTopic": topics.publish_topic("fleet"),
        "MetricsTopic": topics.metrics_topic("fleet"),
    }


def test_synthesized_recipe_carries_the_table(dev) -> None:
    recipe = component_recipes(dev.template_json("dev/Pipeline"))[f"{NAMESPACE}.dev.DlrInference"]
    configuration = dict(recipe["ComponentConfiguration"]["DefaultConfiguration"])
    configuration.pop("accessControl")
    stage_values = ("TopK", "PublishTopic", "MetricsTopic", "CaptureBucket", "CapturePrefix")
    for key, value in configuration.items():
        if key not in stage_values:  # the stage's values (cdk.json, its bucket)
            assert value == settings.setting(key).default, key
    assert configuration["CapturePrefix"] == "captures/dev/default/{iot:thingName}/"
    assert configuration["CaptureBucket"] not in ("", None)  # the stage's artifact bucket
    assert [s.key for s in settings.SETTINGS if s.in_recipe] == list(configuration)


def test_cli_defaults_are_the_tables(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(["--model-dir", "m"])
    start = cli.starting_config(args, tmp_path)
    for s in settings.SETTINGS:
        value = getattr(start, s.field)
        if s.kind == settings.PATH:
            if s.default is not None:  # ProcessedDir/FailedDir: beside the default input folder
                assert value == tmp_path / str(s.default), s.key
        else:
            assert value == s.default, s.key
            assert getattr(config.Config(Path(), Path(), Path(), Path()), s.field) == s.default


def test_cli_flags_set_the_tables_fields(tmp_path: Path) -> None:
    for s in settings.SETTINGS:
        if s.kind in (settings.INTEGER, settings.NUMBER):
            value = s.python_type(s.high)
            args = cli.build_parser().parse_args(["--model-dir", "m", s.flag, str(value)])
            assert getattr(cli.starting_config(args, tmp_path), s.field) == value, s.flag


@pytest.mark.parametrize(
    "row",
    [s for s in settings.SETTINGS if s.kind in (settings.INTEGER, settings.NUMBER)],
    ids=lambda s: s.key,
)
def test_validation_bounds_are_the_tables(row: settings.Setting, tmp_path: Path) -> None:
    base = config.Config(tmp_path, tmp_path, tmp_path, tmp_path)
    assert row.low is not None and row.high is not None
    step = 1 if row.kind == settings.INTEGER else 0.001
    for accepted in (row.high, row.low + (step if row.low_open else 0)):
        value = row.python_type(accepted)
        assert (
            getattr(config.merge_config(base, {row.key: value}, cwd=tmp_path), row.field) == value
        )
    for refused in (row.high + step, row.low if row.low_open else row.low - step):
        with pytest.raises(config.ConfigError, match=re.escape(row.key)):
            config.merge_config(base, {row.key: row.python_type(refused)}, cwd=tmp_path)
    with pytest.raises(config.ConfigError, match=re.escape(row.flag)):
        config.merge_config(
            base, {row.key: row.python_type(row.high + step)}, cwd=tmp_path, names=cli.FLAGS
        )


def test_every_key_the_component_parses_is_in_the_table() -> None:
    assert set(config.KEYS) == {s.key for s in settings.SETTINGS}
    assert {f.name for f in dataclasses.fields(config.Config)} == {
        s.field for s in settings.SETTINGS
    }
    assert set(cli.FLAGS) - {config.STATE_DIR} == {s.key for s in settings.SETTINGS}


# -- names -----------------------------------------------------------------------------------


def _parts(device_class: Any) -> list[str]:
    runtime = (
        [] if device_class.runtime == "variant.DLR" else [names.runtime_part(device_class.dlr)]
    )
    return [names.MODEL, *runtime, names.inference_part(device_class.dlr)]


def test_component_names_are_the_ones_built_and_released(dev, three_classes) -> None:
    """The constructs' names, and app_config's release list (rebuilt there today: the lead
    switches it to the contract), are device_contract's."""
    import app_config

    assert names.DEFAULT_CLASS == app_config.DEFAULT_CLASS
    for synthesized, overrides in ((dev, {}), (three_classes, {"device_classes": THREE_CLASSES})):
        cfg = app_config.load_config({**CDK_JSON_CONTEXT, **overrides}, "dev")
        built = set(component_recipes(synthesized.template_json("dev/Pipeline")))
        for device_class in cfg.device_classes:
            expected = [
                names.component_name(cfg.component_namespace, "dev", device_class.name, part)
                for part in _parts(device_class)
            ]
            assert set(expected) <= built, device_class.name
            released = app_config.release_components(cfg.component_namespace, "dev", device_class)
            assert [n for n in released if n.startswith(cfg.component_namespace)] == expected
    assert (
        names.component_name(NAMESPACE, "dev", "default", names.MODEL) == f"{NAMESPACE}.dev.Model"
    )
    assert (
        names.component_name(NAMESPACE, "dev", "jetson", "Model") == f"{NAMESPACE}.dev.jetson.Model"
    )


# -- the shipped zip -------------------------------------------------------------------------


def test_component_zip_ships_this_contract_beside_the_component(dev) -> None:
    template = dev.template_json("dev/Pipeline")
    (published,) = [
        r
        for r in resources_of_type(template, "Custom::PublishedArtifact").values()
        if "DlrInference" in render_token(r["Properties"]["Key"])
    ]
    (zip_path,) = dev.assembly_dir.glob(
        f"asset.{render_token(published['Properties']['SourceKey'])}"
    )
    package = Path(messages.__file__).parent
    with zipfile.ZipFile(zip_path) as archive:
        shipped = {
            n: archive.read(n) for n in archive.namelist() if n.startswith("device_contract/")
        }
        assert "edge_inference/__main__.py" in archive.namelist()
    assert shipped == {
        f"device_contract/{p.name}": p.read_bytes()
        for p in sorted(package.glob("*.py"))
        if p.name not in device_contract.CLOUD_ONLY
    }
    # the cloud-only modules stay out: a dashboard change makes no new device component
    assert device_contract.CLOUD_ONLY and not any(
        f"device_contract/{name}" in shipped for name in device_contract.CLOUD_ONLY
    )


def test_no_module_the_device_imports_is_left_out_of_its_zip() -> None:
    """A cloud-only module imported by the component or by a module the zip ships would be an
    ImportError on the device; the imports are read from the sources' syntax trees."""
    package = Path(messages.__file__).parent
    shipped_sources = [
        *sorted((REPO_ROOT / "component_src").rglob("*.py")),
        *(p for p in sorted(package.glob("*.py")) if p.name not in device_contract.CLOUD_ONLY),
    ]
    cloud_only = {name.removesuffix(".py") for name in device_contract.CLOUD_ONLY}
    for source in shipped_sources:
        for node in ast.walk(ast.parse(source.read_text())):
            imported: set[str] = set()
            if isinstance(node, ast.Import):
                imported = {alias.name.rsplit(".", 1)[-1] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported = {alias.name for alias in node.names}
                imported.add((node.module or "").rsplit(".", 1)[-1])
            assert not imported & cloud_only, (source, node.lineno)


# -- one place -------------------------------------------------------------------------------

_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import device_contract
    from device_contract import messages
    from edge_constructs.greengrass import recipes
    from edge_follow import render
    from edge_inference import cli, config

    out = {"contract": device_contract.__file__}
    recipe = recipes.inference_configuration(top_k=5, topic_prefix="fleet")
    out["recipe_poll"] = recipe["PollIntervalSeconds"]
    out["recipe_topic"] = recipe["PublishTopic"]
    out["access"] = recipes.access_control_topic(recipe["PublishTopic"])
    args = cli.build_parser().parse_args(["--model-dir", "m"])
    out["cli_poll"] = args.poll_interval
    out["config_poll"] = config.Config(Path(), Path(), Path(), Path()).poll_interval
    out["component_topic"] = config.Config(Path(), Path(), Path(), Path()).publish_topic
    try:
        cli.build_parser().parse_args(["--model-dir", "m", "--scan-every", "3"])
        config.merge_config(config.Config(Path(), Path(), Path(), Path()),
                            {"PollIntervalSeconds": 61}, cwd=Path("/"), names=cli.FLAGS)
    except config.ConfigError as err:
        out["refusal"] = str(err)
    out["filter"] = render.topic_filter("fleet")
    out["thing"] = render.thing_name("fleet", "fleet/cam-1/results")
    payload = json.loads(sys.argv[1])
    topic = "fleet/cam-1/results"
    line = render.render("fleet", topic, json.dumps(payload).encode(), as_json=False)
    out["line"] = line.text
    out["schema_keys"] = list(messages.json_schema()["oneOf"][0]["properties"])
    out["table"] = __import__("device_contract.settings").settings.markdown_table()
    from main_job import report, results
    (read,) = results.photo_results(
        {"cat.jpg": Path("cat.jpg")}, [{"topic": topic, "payload": payload}]
    )
    out["main_job_latency"] = read.latency_ms
    out["main_job_lines"] = report.subscriber_lines(
        [{"topic": "edge-ai/cam-1/results", "payload": payload}]
    )
    print(json.dumps(out))
    """
)


def test_one_edit_to_the_contract_reaches_every_side(tmp_path: Path) -> None:
    """Edit a copy of the contract, as a developer would edit the file: one setting's row
    (default, bound, flag), the topic suffix, one message key (its field and its Key, the
    documented pair). The recipe, the CLI, the validation, the README table, the follower,
    the main job's results and subscriber lines and the schema all change with it."""
    copy = tmp_path / "device_contract"
    shutil.copytree(
        Path(messages.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__")
    )

    def edit(name: str, old: str, new: str) -> None:
        path = copy / name
        text = path.read_text()
        assert text.count(old) == 1, f"{name}: {old!r} must occur once"
        path.write_text(text.replace(old, new))

    edit(
        "settings.py",
        '"PollIntervalSeconds", "poll_interval", NUMBER, 1.0, "--poll-interval", "S",\n'
        '        "seconds between scans of the input folder", low=0.0, high=3600.0,',
        '"PollIntervalSeconds", "poll_interval", NUMBER, 2.5, "--scan-every", "S",\n'
        '        "seconds between scans of the input folder", low=0.0, high=60.0,',
    )
    edit("topics.py", 'PREDICTIONS_SUFFIX = "predictions"', 'PREDICTIONS_SUFFIX = "results"')
    edit(
        "messages.py",
        "    latency_ms: float = dataclasses.field(",
        "    total_ms: float = dataclasses.field(",
    )
    edit("messages.py", '    LATENCY_MS = "latency_ms"', '    LATENCY_MS = "total_ms"')

    payload = {
        **{k: v for k, v in PREDICTION.to_dict().items() if k not in ("latency_ms", "input")},
        "input": "boot1-cat.jpg",
        "total_ms": 12.0,
    }
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(payload)],
        env={
            "PYTHONPATH": ":".join([str(tmp_path), str(COMPONENT_SRC), str(REPO_ROOT)]),
            "PATH": "/usr/bin:/bin",
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["contract"] == str(copy / "__init__.py")
    assert out["recipe_poll"] == out["cli_poll"] == out["config_poll"] == 2.5
    assert out["recipe_topic"] == "fleet/{iot:thingName}/results"
    assert out["component_topic"] == "edge-ai/{iot:thingName}/results"
    assert out["access"] == "fleet/*/results"
    assert "--scan-every 61" not in out["refusal"] and out["refusal"].startswith(
        "--scan-every must be"
    )
    assert "at most 60.0" in out["refusal"]
    assert out["filter"] == "fleet/+/results"
    assert out["thing"] == "cam-1"
    assert out["line"].endswith("tabby 0.910, tiger cat 0.050  12.0 ms")
    assert "total_ms" in out["schema_keys"] and "latency_ms" not in out["schema_keys"]
    assert "| `PollIntervalSeconds` | `--scan-every S` | 2.5 | > 0, <= 60 |" in out["table"]
    assert out["main_job_latency"] == 12.0
    assert len(out["main_job_lines"]) == 1 and out["main_job_lines"][0].endswith("12.0 ms")


def test_synthesized_recipe_lets_the_component_publish_its_metrics_and_no_more(dev) -> None:
    """The recipe's ``accessControl``, evaluated as the nucleus does (``device_sim.ipc.
    authorization``, after aws-greengrass-nucleus ``authorization/AuthorizationHandler.java``),
    authorizes ``PublishToIoTCore`` on the results topic and the metrics topic (issue 15), and
    nothing beside them. Without the metrics resource every window would be refused."""
    from device_sim.ipc.authorization import authorize, parse_access_control

    recipe = component_recipes(dev.template_json("dev/Pipeline"))[f"{NAMESPACE}.dev.DlrInference"]
    configuration = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    policies = parse_access_control(configuration["accessControl"])

    def allowed(template: str) -> bool:
        resource = template.replace(topics.THING_NAME_VARIABLE, "core-7")
        return authorize(
            policies,
            destination="aws.greengrass.ipc.mqttproxy",
            operation="aws.greengrass#PublishToIoTCore",
            resource=resource,
            mqtt=True,
        ).allowed

    assert allowed(configuration["PublishTopic"])
    assert allowed(configuration["MetricsTopic"])
    assert configuration["MetricsTopic"].endswith("/" + topics.METRICS_SUFFIX)
    assert not allowed(configuration["MetricsTopic"].replace("/metrics", "/commands"))


def test_contracts_doc_prints_the_metrics_schema() -> None:
    block = generated_block(
        REPO_ROOT / "docs" / "CONTRACTS.md", "device_contract.messages.metrics_schema"
    )
    text = block.strip().removeprefix("```json").removesuffix("```")
    assert json.loads(text) == messages.metrics_schema(), (
        "docs/CONTRACTS.md: paste the output of python -c 'import json, device_contract.messages "
        "as m; print(json.dumps(m.metrics_schema(), indent=2))'"
    )
