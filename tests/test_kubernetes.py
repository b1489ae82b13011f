"""deploy/kubernetes/ is valid against Kubernetes' own schemas (kubernetes-validate ships
them: no cluster, no network), and its parts agree: the network file in the ConfigMap
names each pod of the StatefulSet under the headless Service, one node per replica, and
the mender's Deployment (one pod, never two) reads the same network file and secret."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

MANIFESTS = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
VERSION = "1.30.0"
"""The oldest Kubernetes still maintained when the manifests were written."""


def resources() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found[document["kind"]] = document
    return found


@pytest.mark.parametrize("version", [VERSION, kubernetes_validate.latest_version()])
def test_every_manifest_is_valid_strictly(version: str) -> None:
    found = resources()
    assert set(found) == {"StatefulSet", "Deployment", "Service", "Secret", "ConfigMap"}
    for resource in found.values():
        kubernetes_validate.validate(resource, version, strict=True)


def test_a_bad_manifest_is_refused() -> None:
    service = resources()["Service"]
    service["spec"]["clusterIP"] = 7001
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, VERSION, strict=True)


def test_the_network_file_names_each_pod_of_the_stateful_set() -> None:
    found = resources()
    sets, service = found["StatefulSet"], found["Service"]
    network = tomllib.loads(found["ConfigMap"]["data"]["network.toml"])
    assert service["spec"]["clusterIP"] == "None"
    assert sets["spec"]["serviceName"] == service["metadata"]["name"]
    name, replicas = sets["metadata"]["name"], sets["spec"]["replicas"]
    expected = {str(n): f"{name}-{n - 1}.{service['metadata']['name']}:7001" for n in range(1, 17)}
    assert network["nodes"] == expected and replicas == len(expected)
    container = sets["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["start-node", "auto"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert network["secret"].startswith(mounts["secret"] + "/")
    claims = [c["metadata"]["name"] for c in sets["spec"]["volumeClaimTemplates"]]
    assert claims == ["data"] and mounts["data"] == "/data"


def test_one_mender_reads_the_nodes_network_file_and_secret() -> None:
    found = resources()
    mender, sets = found["Deployment"], found["StatefulSet"]
    assert mender["spec"]["replicas"] == 1
    assert mender["spec"]["strategy"] == {"type": "Recreate"}  # no second one while it rolls
    pod, node_pod = mender["spec"]["template"]["spec"], sets["spec"]["template"]["spec"]
    [container], [node] = pod["containers"], node_pod["containers"]
    assert container["args"] == ["mend"] and container["image"] == node["image"]
    assert container["env"] == node["env"]
    node_mounts = [m for m in node["volumeMounts"] if m["name"] != "data"]
    assert container["volumeMounts"] == node_mounts
    assert pod["volumes"] == node_pod["volumes"]
    labels = mender["spec"]["template"]["metadata"]["labels"]
    assert labels == mender["spec"]["selector"]["matchLabels"]
    assert labels != found["Service"]["spec"]["selector"]  # the Service names only the nodes
