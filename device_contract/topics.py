"""The topic layout: a device publishes its results on ``<prefix>/<thing name>/predictions``.

Every spelling of that layout is built here: the component's default ``PublishTopic`` (with the
``{iot:thingName}`` recipe variable that the component itself substitutes), the recipe's
``accessControl`` resource, the cloud IoT policy's topic resource, and the filter a subscriber
(``edge_follow``, the main job's report) uses.
"""

from __future__ import annotations

# The recipe variable the component replaces with its thing name in PublishTopic (it is read
# from AWS_IOT_THING_NAME, which the nucleus sets for every component: aws-greengrass-nucleus
# v2.18.2 deployment/DeviceConfiguration.java, AWS_IOT_THING_NAME_ENV in the setenv namespace).
THING_NAME_VARIABLE = "{iot:thingName}"
THING_NAME_ENV = "AWS_IOT_THING_NAME"
PREDICTIONS_SUFFIX = "predictions"
#: The device's per-window numbers (``messages.Metrics``) go to ``<prefix>/<thing>/metrics``.
METRICS_SUFFIX = "metrics"
# The prefix a stage uses unless cdk.json says otherwise (the component's own default too).
DEFAULT_TOPIC_PREFIX = "edge-ai"


# How the stack's ``PredictionsTopic`` output writes the thing's place (for people reading it).
THING_NAME_PLACEHOLDER = "<thing name>"


def predictions_output(prefix: str) -> str:
    """``<prefix>/<thing name>/predictions``: the Pipeline stack's ``PredictionsTopic`` output,
    from which tools that read a cloud assembly learn the stage's prefix."""
    return f"{prefix}/{THING_NAME_PLACEHOLDER}/{PREDICTIONS_SUFFIX}"


def prefix_of_predictions_output(value: str) -> str | None:
    """The prefix in a ``PredictionsTopic`` output value; None when it is not one."""
    tail = f"/{THING_NAME_PLACEHOLDER}/{PREDICTIONS_SUFFIX}"
    if value.endswith(tail) and len(value) > len(tail):
        return value[: -len(tail)]
    return None


def publish_topic(prefix: str) -> str:
    """``<prefix>/{iot:thingName}/predictions``: the component's ``PublishTopic`` template."""
    return f"{prefix}/{THING_NAME_VARIABLE}/{PREDICTIONS_SUFFIX}"


def metrics_topic(prefix: str) -> str:
    """``<prefix>/{iot:thingName}/metrics``: the component's ``MetricsTopic`` template."""
    return f"{prefix}/{THING_NAME_VARIABLE}/{METRICS_SUFFIX}"


def metrics_subscription_filter(prefix: str) -> str:
    """``<prefix>/+/metrics``: every thing's metrics (an MQTT topic filter)."""
    return f"{prefix}/+/{METRICS_SUFFIX}"


def access_control_resource(topic: str) -> str:
    """``topic`` with ``{iot:thingName}`` as ``*``: the recipe's ``accessControl`` resource
    (why a wildcard: ``edge_constructs/greengrass/recipes.py`` ``access_control_topic``)."""
    return topic.replace(THING_NAME_VARIABLE, "*")


def thing_topics(prefix: str, thing: str) -> str:
    """``<prefix>/<thing>/*``: the topics the cloud IoT policy lets one thing use (``thing`` may
    be a policy variable such as ``${iot:Connection.Thing.ThingName}``)."""
    return f"{prefix}/{thing}/*"


def subscription_filter(prefix: str) -> str:
    """``<prefix>/+/predictions``: every thing's results (an MQTT topic filter)."""
    return f"{prefix}/+/{PREDICTIONS_SUFFIX}"


def thing_of(prefix: str, topic: str) -> str:
    """The thing name in ``<prefix>/<thing>/predictions``; the whole topic when it does not
    match."""
    head, tail = f"{prefix}/", f"/{PREDICTIONS_SUFFIX}"
    if topic.startswith(head) and topic.endswith(tail) and len(topic) > len(head) + len(tail):
        return topic[len(head) : -len(tail)]
    return topic
