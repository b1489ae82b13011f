"""``/metrics``: what the nodes count, in the Prometheus text format (prometheus-client).

Each scrape reads the latest survey (every node's ``/STATUS``, its ``counters`` included),
so a scrape asks no node anything; the one figure no node can count, how long a message
took to reach every node, is a histogram of the messages sent through this server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gossip.web.console import Spread, Survey

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
COUNTERS = {
    "copies": ("gossip_copies_received", "Copies of messages a node received, first or not."),
    "duplicates": ("gossip_duplicates", "Copies a node received of messages it already held."),
    "submitted": ("gossip_messages_submitted", "Messages clients submitted to a node."),
    "link_breaks": ("gossip_link_breaks", "Peer connections a node saw break."),
    "heals": ("gossip_heals", "Links a node made to heal after losing a peer."),
    "merges": ("gossip_merges", "Merges a node made to join two parts of a cut network."),
    "pulls": ("gossip_catchup_pulls", "Messages a node pulled from a peer by catch-up."),
}
"""The per-node counters of ``/STATUS`` (issue 15's ``counters``), as metric names."""
SPREAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SurveyCollector(Collector):
    """Per-node metrics from the latest survey; a node that is down has none, and none has
    any while the network cannot be surveyed (stopped, or its state unreadable): the last
    figures would say a stopped network is up."""

    def __init__(self) -> None:
        self.latest: Survey | None = None
        self.tried = False

    def collect(self) -> Iterator[Metric]:
        survey = self.latest
        if self.tried:
            yield GaugeMetricFamily(
                "gossip_survey_ok",
                "1 if the last look at the network worked; 0: no node figures until one does.",
                value=0.0 if survey is None else 1.0,
            )
        if survey is None:
            return
        up = GaugeMetricFamily("gossip_node_up", "1 if the node answered.", labels=["node"])
        held = GaugeMetricFamily("gossip_messages_held", "Messages a node holds.", labels=["node"])
        unread = GaugeMetricFamily("gossip_messages_unread", "Unread messages.", labels=["node"])
        peers = GaugeMetricFamily("gossip_peers", "Peers a node holds now.", labels=["node"])
        counters = {
            key: CounterMetricFamily(name, text, labels=["node"])
            for key, (name, text) in COUNTERS.items()
        }
        frames = {
            way: CounterMetricFamily(
                f"gossip_frames_{way}",
                f"Frames a node took {way}, by command.",
                labels=["node", "command"],
            )
            for way in ("in", "out")
        }
        for row in survey.rows:
            node = str(row.entry.number)
            up.add_metric([node], 1.0 if row.state == "up" else 0.0)
            if row.state != "up":
                continue
            report = row.report
            held.add_metric([node], float(report.get("messages", 0)))
            unread.add_metric([node], float(report.get("unread", 0)))
            peers.add_metric([node], float(len(report.get("peers", []))))
            counted: dict[str, Any] = report.get("counters") or {}
            for key, family in counters.items():
                family.add_metric([node], float(counted.get(key, 0)))
            for way, family in frames.items():
                for command, count in sorted((counted.get(f"frames_{way}") or {}).items()):
                    family.add_metric([node, str(command)], float(count))
        yield from (up, held, unread, peers, *counters.values(), *frames.values())


class Metrics:
    """The server's registry: the nodes' figures and the spreads it watched."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.nodes = SurveyCollector()
        self.registry.register(self.nodes)
        self.spread = Histogram(
            "gossip_spread_seconds",
            "Messages sent through this server: submitted until every live node held it.",
            buckets=SPREAD_BUCKETS,
            registry=self.registry,
        )

    def surveyed(self, survey: Survey | None) -> None:
        """The latest look at the network; None: it failed."""
        self.nodes.latest = survey
        self.nodes.tried = True

    def spread_seen(self, spread: Spread) -> None:
        """Count a message that reached every node it was meant to (one that did not has no
        submit-to-all latency)."""
        if spread.everywhere:
            self.spread.observe(spread.seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
