"""The IoT thing groups the devices of this stack join (one per device class, canaries too)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iot as iot
from constructs import Construct


class ThingGroups(Construct):
    """One ``AWS::IoT::ThingGroup`` per name; ``first`` is the first device class's group.

    Props:
        names: the group names, the first device class's first; at least one.
        description: each group's description.
    """

    def __init__(
        self, scope: Construct, id_: str, *, names: Sequence[str], description: str
    ) -> None:
        super().__init__(scope, id_)
        if not names:
            raise ValueError("ThingGroups: at least one thing group name is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"ThingGroups: a thing group is named twice in {list(names)}")
        stack = Stack.of(self)
        properties = iot.CfnThingGroup.ThingGroupPropertiesProperty(
            thing_group_description=description
        )
        self.groups: list[iot.CfnThingGroup] = []
        self.arns: list[str] = []
        for index, name in enumerate(names):
            # The first group's id predates the others' (their ids add the name).
            id_suffix = "" if index == 0 else re.sub(r"[^A-Za-z0-9]", "", name)
            self.groups.append(
                iot.CfnThingGroup(
                    self,
                    f"ThingGroup{id_suffix}",
                    thing_group_name=name,
                    thing_group_properties=properties,
                )
            )
            self.arns.append(
                stack.format_arn(service="iot", resource="thinggroup", resource_name=name)
            )
        self.first = self.groups[0]
