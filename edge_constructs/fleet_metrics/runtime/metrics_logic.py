"""A device's ``Metrics`` window (the IoT rule's SELECT result) into CloudWatch metrics.

What comes in: the message as the device published it, plus ``topic_thing``, the thing name
the rule took from the topic with the IoT SQL ``topic(n)`` function (AWS IoT developer guide,
"Functions", topic(Decimal),
https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html). A device may
publish only on its own ``<prefix>/<thing>/...`` topics (the core-device IoT policy), so the
topic says who sent it; the payload's ``thing`` is only checked against it.

What happens to a message:

* it is not a valid ``Metrics`` (``device_contract.messages.Metrics.from_dict`` refuses it),
  or its ``thing`` names another device: logged and dropped. Raising would make Lambda retry
  an asynchronous invocation twice more (Lambda developer guide, "Error handling for
  asynchronous invocation") with the same bad payload: never useful.
* its window is outside what PutMetricData accepts, "as much as two weeks before the current
  date, and as much as 2 hours after the current day and time" (botocore
  ``cloudwatch/2010-08-01/service-2.json``, PutMetricData documentation): logged and skipped
  (a device that was offline for longer than that), not an error loop. A margin
  (:data:`AGE_MARGIN`) keeps a window that is nearly two weeks old from being refused by the
  time a retry runs.
* CloudWatch refuses the data (``InvalidParameterValue``, ...): logged and dropped, same reason.
* anything else (throttling past the client's own retries, a service fault): raised, so
  Lambda retries the invocation twice, with backoff; after that the event is discarded
  (the function has no on-failure destination: a lost minute of one device's metrics).

Which class and ring a window counts for: the thing's groups (``ListThingGroupsForThing``,
botocore ``iot/2015-05-28``), matched against the stage's own groups (the function's
``THING_GROUPS`` environment: group -> [class, ring], from the configuration at synth). The
answer is cached per thing for :data:`PLACEMENT_TTL` in the warm function, so a device moved
from a canary group to its fleet group counts for its new ring within minutes, and a fleet of
devices sending a window a minute costs one lookup per device per TTL, not one per window. A
thing in none of the stage's groups counts as class and ring ``-`` (``UNASSIGNED``); a thing
that no longer exists (``ResourceNotFoundException``) too. Any other error of the lookup
(throttling, access denied) is raised: Lambda retries.

Drift (``device_contract.drift``): a window of a thing in one of the stage's rings, whose model
has a baseline (``fleet/baselines/<model id>.json`` in the artifact bucket, written by the
pipeline's ``Custom::DriftBaseline``), also gets its results per confidence bucket and what the
baseline expected there (:class:`Baselines` reads and caches them). A window whose baseline
cannot be read gets no drift datums; its other metrics are put as always. The baseline is read
before anything is put, so a failure there can never make Lambda retry a window whose other
datums were already put (they would be counted twice).

PutMetricData takes "no more than 1000 different metrics" per request and 1 MB (same
documentation): a window is 20 datums, well under, but the data is still sent in chunks of
:data:`MAX_DATUMS_PER_REQUEST` so a change in the contract cannot produce a refused request.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from botocore.exceptions import ClientError

from device_contract import drift, fleet_metrics
from device_contract.messages import MessageError, Metrics

LOGGER = logging.getLogger(__name__)
LOGGER.setLevel(logging.INFO)

TOPIC_THING = "topic_thing"
MAX_DATUMS_PER_REQUEST = 1000
MAX_AGE = datetime.timedelta(weeks=2)
MAX_AHEAD = datetime.timedelta(hours=2)
AGE_MARGIN = datetime.timedelta(hours=1)
# PutMetricData errors that say the data itself is wrong (botocore cloudwatch PutMetricData
# errors): retrying the same data cannot help.
REFUSED_CODES = frozenset(
    {"InvalidParameterValue", "MissingParameter", "InvalidParameterCombination"}
)


PLACEMENT_TTL = datetime.timedelta(minutes=5)
#: A thing's (class, ring).
Placement = Tuple[str, str]


class Placements:
    """thing -> (class, ring) through ``ListThingGroupsForThing``, cached for ``ttl``.

    ``groups``: the stage's thing groups, group name -> (class, ring). A thing in a canary
    group and its fleet group at once (the README asks for one or the other) counts as canary:
    its numbers then gate promotion rather than hide in the fleet's.
    """

    def __init__(
        self,
        iot: Any,
        groups: Mapping[str, Placement],
        clock: Callable[[], datetime.datetime],
        ttl: datetime.timedelta = PLACEMENT_TTL,
    ) -> None:
        self.iot = iot
        self.groups = dict(groups)
        self.clock = clock
        self.ttl = ttl
        self._cache: Dict[str, Tuple[datetime.datetime, Placement]] = {}

    def __call__(self, thing: str) -> Placement:
        now = self.clock()
        cached = self._cache.get(thing)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        placement = self._look_up(thing)
        self._cache[thing] = (now, placement)
        return placement

    def _look_up(self, thing: str) -> Placement:
        found: List[Placement] = []
        token = None
        while True:
            kwargs: Dict[str, Any] = {"thingName": thing, "maxResults": 250}
            if token:
                kwargs["nextToken"] = token
            try:
                page = self.iot.list_thing_groups_for_thing(**kwargs)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return (fleet_metrics.UNASSIGNED, fleet_metrics.UNASSIGNED)
                raise
            for group in page.get("thingGroups", []):
                placement = self.groups.get(str(group.get("groupName", "")))
                if placement is not None:
                    found.append(placement)
            token = page.get("nextToken")
            if not token:
                break
        if not found:
            return (fleet_metrics.UNASSIGNED, fleet_metrics.UNASSIGNED)
        found.sort(key=lambda p: p[1] != fleet_metrics.CANARY_RING)
        return found[0]


#: bucket -> share of a model's validation results (``device_contract.drift.shares``).
Shares = Mapping[str, float]
#: How long a model with no readable baseline is not asked again (a baseline written after the
#: first windows arrive, a throttled read).
MISSING_BASELINE_TTL = datetime.timedelta(minutes=15)
#: Model ids a warm function remembers (found or missing); past it the memory starts over. A
#: device names its model in each window, so a fleet with a broken or hostile device sending a
#: new id every minute must not grow the function's memory without bound.
MAX_REMEMBERED_MODELS = 1000
# GetObject answers for a key that is not there: NoSuchKey, since the function may list the
# baselines' prefix; without s3:ListBucket it would be "403 Access Denied" (botocore s3
# GetObject documentation), so AccessDenied here means the role is wrong.
_ABSENT_CODES = frozenset({"NoSuchKey", "404"})
_DENIED_CODES = frozenset({"AccessDenied", "403"})


class Baselines:
    """model id -> its drift baseline's bucket shares, or None, read from
    ``s3://<bucket>/fleet/baselines/<model id>.json``.

    A model id names one model's files by their digests (packaging ``model_id_for``), and its
    baseline is written once for it, so a baseline found is kept as long as the warm function
    lives; one not found (or unreadable) is asked again after ``missing_ttl``.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        clock: Callable[[], datetime.datetime],
        missing_ttl: datetime.timedelta = MISSING_BASELINE_TTL,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.clock = clock
        self.missing_ttl = missing_ttl
        self._found: Dict[str, Shares] = {}
        self._missing: Dict[str, datetime.datetime] = {}

    def __call__(self, model_id: str) -> Optional[Shares]:
        if model_id in self._found:
            return self._found[model_id]
        now = self.clock()
        since = self._missing.get(model_id)
        if since is not None and now - since < self.missing_ttl:
            return None
        if len(self._found) + len(self._missing) >= MAX_REMEMBERED_MODELS:
            self._found.clear()
            self._missing.clear()
        shares = self._read(model_id)
        if shares is None:
            self._missing[model_id] = now
        else:
            self._found[model_id] = shares
            self._missing.pop(model_id, None)
        return shares

    def _read(self, model_id: str) -> Optional[Shares]:
        try:
            key = drift.baseline_key(model_id)
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return drift.parse_document(body, model_id)
        except drift.BaselineError as error:
            LOGGER.warning("no drift for model %s: %s", model_id, error)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _DENIED_CODES:
                LOGGER.warning(
                    "the function may not read the drift baseline of %s (%s): check its role",
                    model_id,
                    code,
                )
            elif code in _ABSENT_CODES:
                LOGGER.info(
                    "model %s has no drift baseline (%s): a model brought without training, "
                    "or trained with no validation images",
                    model_id,
                    code,
                )
            else:
                LOGGER.warning("could not read the drift baseline of %s: %s", model_id, error)
        except Exception as error:  # anything else about one baseline: drift only is left out
            LOGGER.warning(
                "unusable drift baseline of %s: %s: %s", model_id, type(error).__name__, error
            )
        return None


def no_baselines(model_id: str) -> Optional[Shares]:
    return None


def parse_groups(text: str) -> Dict[str, Placement]:
    """The ``THING_GROUPS`` environment: a JSON object, group -> [class, ring]."""
    raw = json.loads(text)
    return {str(group): (str(pair[0]), str(pair[1])) for group, pair in raw.items()}


def chunks(items: List[Dict[str, Any]], size: int) -> Iterator[List[Dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _window_time(text: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"window_start {text!r} is not an ISO 8601 time with a time zone")
    return moment


def ingest(
    event: Mapping[str, Any],
    *,
    namespace: str,
    cloudwatch: Any,
    now: datetime.datetime,
    placement: Callable[[str], Placement] = lambda thing: (
        fleet_metrics.UNASSIGNED,
        fleet_metrics.UNASSIGNED,
    ),
    chunk_size: int = MAX_DATUMS_PER_REQUEST,
    baseline: Callable[[str], Optional[Shares]] = no_baselines,
) -> Dict[str, Any]:
    """Put one window's metrics; returns what was done (``status``: put, refused, skipped)."""
    if not isinstance(event, Mapping):
        return _refused("the event is not a JSON object", "?")
    payload = dict(event)
    sender = str(payload.pop(TOPIC_THING, "") or "")
    if not sender:
        return _refused(f"no {TOPIC_THING}: the rule's SELECT must add topic(n)", "?")
    try:
        metrics = Metrics.from_dict(payload)
        window = _window_time(metrics.window_start)
    except (MessageError, ValueError) as error:
        return _refused(f"not a Metrics message: {error}", sender)
    if metrics.thing != sender:
        return _refused(f"the payload names thing {metrics.thing!r}", sender)
    if window < now - MAX_AGE + AGE_MARGIN or window > now + MAX_AHEAD:
        LOGGER.warning(
            "skipped %s's window of %s: CloudWatch accepts data from two weeks back to two "
            "hours ahead (now %s)",
            sender,
            metrics.window_start,
            now.isoformat(),
        )
        return {"status": "skipped", "thing": sender, "window_start": metrics.window_start}
    device_class, ring = placement(sender)
    drifted = False
    try:
        data = fleet_metrics.datums(metrics, window, device_class, ring)
        if ring in fleet_metrics.RINGS:
            shares = baseline(metrics.model)
            if shares is not None:
                confidence = [(c.name, c.count) for c in metrics.confidence]
                data += drift.datums(confidence, shares, window, device_class, ring)
                drifted = True
    except OverflowError as error:  # a count too large for CloudWatch's doubles
        return _refused(f"a number of the window is too large: {error}", sender)
    requests = 0
    for chunk in chunks(data, chunk_size):
        try:
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=chunk)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in REFUSED_CODES:
                return _refused(f"CloudWatch refused the data: {code}: {error}", sender)
            raise
        requests += 1
    LOGGER.info("put %d datums of %s's window %s", len(data), sender, metrics.window_start)
    return {
        "status": "put",
        "thing": sender,
        "class": device_class,
        "ring": ring,
        "datums": len(data),
        "requests": requests,
        "drift": drifted,
    }


def _refused(reason: str, sender: str) -> Dict[str, Any]:
    LOGGER.warning("dropped a metrics message from %s: %s", sender, reason)
    return {"status": "refused", "thing": sender, "reason": reason}
