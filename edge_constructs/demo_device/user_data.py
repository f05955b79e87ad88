"""The demo core device's user-data script: install what Greengrass needs, download the nucleus,
run the installer with automatic provisioning. Built at synth time from the devices stack's own
installer command (:meth:`CoreDevicePrerequisites.installer_command`), so the two never drift.

cloud-init runs user data once per instance; the script is also safe to run again by hand
(``sudo bash /var/lib/cloud/instance/user-data.txt``): packages install idempotently, the
nucleus is downloaded only if missing, and an installed Greengrass service ends the script.
"""

from __future__ import annotations

import re

# "Install AWS IoT Greengrass Core software with automatic resource provisioning",
# https://docs.aws.amazon.com/greengrass/v2/developerguide/quick-installation.html: a specific
# version at releases/greengrass-<version>.zip.
NUCLEUS_RELEASES = "https://d2s8p88vqu9w66.cloudfront.net/releases"
LOG_FILE = "/var/log/edge-ai-demo-device.log"
WORK_DIR = "/opt/edge-ai-demo-device"
# Ubuntu 24.04 packages: a headless Java runtime for the nucleus, python3-venv for the runtime
# component's virtual environment, unzip for the nucleus archive, curl for downloads.
PACKAGES = ("openjdk-17-jre-headless", "python3-venv", "unzip", "curl")
# The thing name's device part: "demo-" plus this instance's ID, read from IMDSv2 below. The
# installer policy allows thing names that start with the stage's name prefix.
DEVICE_NAME = 'demo-"$INSTANCE_ID"'
THING_SUFFIX_PREFIX = "demo-i-"  # every EC2 instance ID starts with "i-"


def nucleus_url(version: str) -> str:
    """The versioned nucleus archive of ``version`` (``X.Y.Z``).

    Never ``greengrass-nucleus-latest.zip``: that installs whatever AWS released last, a
    nucleus that the public components' ranges (``public_components``) and the simulated
    device were never checked against.
    """
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise ValueError(
            f"nucleus version {version!r}: expected X.Y.Z (the archive "
            "releases/greengrass-<version>.zip); the latest is never installed"
        )
    return f"{NUCLEUS_RELEASES}/greengrass-{version}.zip"


def user_data_script(*, installer_command: str, nucleus_version: str) -> str:
    """The bash script; ``installer_command`` must name the thing with ``DEVICE_NAME``;
    ``nucleus_version`` is the exact ``X.Y.Z`` to install."""
    if '"$INSTANCE_ID"' not in installer_command:
        raise ValueError("the installer command must name the thing after $INSTANCE_ID")
    packages = " ".join(PACKAGES)
    return f"""#!/bin/bash
# Edge AI demo core device: installs and provisions the Greengrass nucleus (see the README,
# "Demo core device (real account)"). Log: {LOG_FILE}
set -euo pipefail
# To the log file and, through cloud-init, to the console (EC2 "Get system log").
exec > >(tee -a {LOG_FILE}) 2>&1
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) demo device setup: start"

if systemctl is-enabled --quiet greengrass.service 2>/dev/null; then
  echo "greengrass.service is installed already: nothing to do"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q {packages}

# IMDSv2 (the launch template requires tokens): a session token, then the instance ID.
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
IMDS=http://169.254.169.254/latest
TOKEN=$(curl -fsS -X PUT "$IMDS/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
INSTANCE_ID=$(curl -fsS -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/instance-id")
echo "instance $INSTANCE_ID"

mkdir -p {WORK_DIR}
cd {WORK_DIR}
if [ ! -f GreengrassInstaller/lib/Greengrass.jar ]; then
  curl -fsS --retry 5 -o greengrass-nucleus.zip {nucleus_url(nucleus_version)}
  rm -rf GreengrassInstaller
  unzip -q -o greengrass-nucleus.zip -d GreengrassInstaller
  rm -f greengrass-nucleus.zip
fi

# The instance role's credentials may take a moment to work after the role is created: retry.
for attempt in 1 2 3 4 5; do
  if {installer_command}; then
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) demo device setup: done"
    exit 0
  fi
  echo "installer failed (attempt $attempt); retrying in 30 s"
  sleep 30
done
echo "installer failed 5 times: giving up"
exit 1
"""
