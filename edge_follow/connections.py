"""The only part that differs between AWS IoT Core and a plain local broker: the connection.

Both return an unconnected MQTT 3.1.1 ``awscrt.mqtt.Connection`` (the awsiotsdk's transport)
with a clean session; :class:`edge_follow.sources.MqttSource` connects and subscribes.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable, Optional

from edge_follow.sources import FollowError, crt_reason

KEEP_ALIVE_SECS = 30


def client_id() -> str:
    """A fresh client ID: AWS IoT Core drops the older of two connections sharing one."""
    return f"edge-follow-{uuid.uuid4().hex[:12]}"


def plain(
    host: str, port: int, timeout: float
) -> Callable[[Callable[..., None], Callable[..., None]], Any]:
    """MQTT over TCP with no TLS and no credentials, for a local test broker."""

    def build(on_interrupted: Callable[..., None], on_resumed: Callable[..., None]) -> Any:
        import awscrt.io
        import awscrt.mqtt

        socket_options = awscrt.io.SocketOptions()
        socket_options.connect_timeout_ms = int(timeout * 1000)
        bootstrap = awscrt.io.ClientBootstrap.get_or_create_static_default()
        return awscrt.mqtt.Connection(
            client=awscrt.mqtt.Client(bootstrap, None),  # tls_ctx None: plain TCP
            host_name=host,
            port=port,
            client_id=client_id(),
            clean_session=True,
            keep_alive_secs=KEEP_ALIVE_SECS,
            socket_options=socket_options,
            on_connection_interrupted=on_interrupted,
            on_connection_resumed=on_resumed,
        )

    return build


def default_credentials(timeout: float) -> Any:
    """The CRT's default credentials chain (environment, profile files, SSO, process, web
    identity, container and instance roles), checked once so a missing one is one clear line."""
    import awscrt.auth

    provider = awscrt.auth.AwsCredentialsProvider.new_default_chain()
    try:
        provider.get_credentials().result(timeout)
    except Exception as err:  # AwsCrtError, or a timeout while probing instance metadata
        raise FollowError(
            "no AWS credentials found (environment, ~/.aws profile, SSO, container or instance "
            f"role): {crt_reason(err)}; run 'aws configure' or set AWS_PROFILE"
        ) from None
    return provider


def resolve_region(region: Optional[str]) -> str:
    """``--region``, else ``AWS_REGION`` (the AWS CLI's and SDKs' variable), else the region
    boto3 finds (``AWS_DEFAULT_REGION``, the profile's ``region``)."""
    found = region or os.environ.get("AWS_REGION")
    if not found:
        import boto3

        found = boto3.session.Session().region_name
    if not found:
        raise FollowError("no AWS region: pass --region, or set AWS_REGION or a profile region")
    return str(found)


def data_endpoint(region: str) -> str:
    """The account's AWS IoT Core data endpoint in ``region``.

    ``iot:DescribeEndpoint`` with ``endpointType=iot:Data-ATS`` (botocore
    ``data/iot/2015-05-28/service-2.json``, ``DescribeEndpoint``: ``GET /endpoint``, response
    ``endpointAddress`` = ``identifier.iot.region.amazonaws.com``; ``iot:Data-ATS`` is the
    ATS-signed endpoint the model's documentation recommends over ``iot:Data``).
    """
    import boto3
    import botocore.exceptions

    try:
        answer = boto3.client("iot", region_name=region).describe_endpoint(
            endpointType="iot:Data-ATS"
        )
    except botocore.exceptions.NoCredentialsError:
        raise FollowError(
            "no AWS credentials found: run 'aws configure', set AWS_PROFILE, or pass --endpoint"
        ) from None
    except botocore.exceptions.ClientError as err:
        error = err.response.get("Error", {})
        raise FollowError(
            f"cannot look up the AWS IoT endpoint in {region} ({error.get('Code')}: "
            f"{error.get('Message')}); pass --endpoint HOST"
        ) from None
    except botocore.exceptions.BotoCoreError as err:  # no network, bad region name, ...
        raise FollowError(
            f"cannot look up the AWS IoT endpoint in {region}: {err}; pass --endpoint HOST"
        ) from None
    return str(answer["endpointAddress"])


def signed_websockets(
    endpoint: str, region: str, credentials: Any, timeout: float
) -> Callable[[Callable[..., None], Callable[..., None]], Any]:
    """MQTT over WebSockets on port 443, the handshake signed with SigV4 (service
    ``iotdevicegateway``) by awsiotsdk's ``websockets_with_default_aws_signing``."""

    def build(on_interrupted: Callable[..., None], on_resumed: Callable[..., None]) -> Any:
        from awsiot import mqtt_connection_builder

        return mqtt_connection_builder.websockets_with_default_aws_signing(
            region=region,
            credentials_provider=credentials,
            endpoint=endpoint,
            client_id=client_id(),
            clean_session=True,
            keep_alive_secs=KEEP_ALIVE_SECS,
            tcp_connect_timeout_ms=int(timeout * 1000),
            on_connection_interrupted=on_interrupted,
            on_connection_resumed=on_resumed,
        )

    return build
