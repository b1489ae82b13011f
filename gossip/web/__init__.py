"""``gossip web``: a live page of a running network, its controls and its metrics.

Imported only by the ``web`` command: aiohttp and prometheus-client stay out of the node
processes and off the send-message/get-messages path.
"""
