"""Follow the predictions that edge devices publish: ``python -m edge_follow --help``.

Three sources, one output: AWS IoT Core (MQTT over WebSockets signed with SigV4 with the user's
own AWS credentials), a plain local MQTT broker (``--broker``), or the simulated device's
record of what it published (``--local ROOT``).
"""
