"""What the device and the cloud side agree on: topics, messages, settings, component names.

One package for every side, on the model of ``edge_constructs/runtime_common/cr_names.py``: the
inference component imports it on the device, the constructs import it at synth, ``edge_follow``
and ``main_job`` import it to read what devices publish. Standard library only, Python >= 3.9
(the device's interpreter). It ships inside the inference component's zip, at the zip's root
beside ``edge_inference/`` (``edge_constructs/bundles.py`` ``build_source_zip``), so the device's
``PYTHONPATH`` (the unarchived folder) finds it; a test checks the zip carries this very copy.

* :mod:`device_contract.topics`: the topic layout.
* :mod:`device_contract.messages`: what the device publishes, with its JSON schema.
* :mod:`device_contract.settings`: the component's settings table.
* :mod:`device_contract.names`: the Greengrass component names.
* :mod:`device_contract.fleet_metrics`: what the cloud makes of a device's metrics (metric and
  alarm names). Cloud only (:data:`CLOUD_ONLY`): the device zip leaves it out, so a dashboard
  or alarm change never makes a new inference component version for the fleet.
"""

#: Modules the device never imports; the inference component's zip leaves them out.
CLOUD_ONLY = ("fleet_metrics.py", "drift.py")
