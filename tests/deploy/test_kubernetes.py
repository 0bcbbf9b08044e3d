"""deploy/k8s: schema-valid for named Kubernetes versions and wired the way operations need."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, K8S, venv_tool

#: The oldest Kubernetes release still commonly run, and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in MANIFESTS:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def _validate(paths: list, version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_tool("kubernetes-validate"), "--strict", "-k", version, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_for(version) -> None:
    result = _validate(MANIFESTS, version)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout + result.stderr


def test_the_validator_rejects_a_wrong_manifest(tmp_path) -> None:
    deployment = _one("Deployment", "casebridge-gateway")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    deployment["spec"]["replicas"] = "two"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(deployment))
    assert _validate([path], KUBERNETES_VERSIONS[0]).returncode != 0


def test_kustomization_lists_every_manifest_but_the_secret_examples() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in MANIFESTS} - {"secrets.example.yaml"}
    for name in listed:
        assert all(d["kind"] != "Secret" for d in yaml.safe_load_all((K8S / name).read_text()))


def test_route_table_configmap_is_the_route_table_file() -> None:
    routes = _one("ConfigMap", "casebridge-routes")["data"]["routes.yaml"]
    assert routes == (DEPLOY / "config" / "routes.yaml").read_text()


def test_the_route_table_loads() -> None:
    from casebridge.routing.routes import load_route_table

    table = load_route_table(DEPLOY / "config" / "routes.yaml")
    assert table.agencies


def _pod(kind: str, name: str) -> dict[str, Any]:
    return _one(kind, name)["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("Deployment", "casebridge-gateway"),
        ("Deployment", "casebridge-worker"),
        ("Job", "casebridge-migrate"),
    ],
)
def test_pods_are_locked_down(kind, name) -> None:
    pod = _pod(kind, name)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsUser"] >= 10000
        for kind_ in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind_]), kind_
        assert container["envFrom"] == [{"configMapRef": {"name": "casebridge-config"}}]
        assert not container.get("env"), "settings come from the ConfigMap, secrets from files"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/run/secrets/casebridge", "/etc/casebridge", "/tmp"} <= mounts


def test_config_names_secret_files_that_the_secret_provides() -> None:
    config = _one("ConfigMap", "casebridge-config")["data"]
    example = _one("Secret", "casebridge-secrets")["stringData"]
    for setting in ("CASEBRIDGE_DATABASE_URL_FILE", "CASEBRIDGE_BROKER_URL_FILE"):
        folder, key = config[setting].rsplit("/", 1)
        assert folder == "/run/secrets/casebridge" and key in example
        assert setting.removesuffix("_FILE") not in config
    assert config["CASEBRIDGE_ENVIRONMENT"] == "production"
    assert config["CASEBRIDGE_ROUTE_TABLE"] == "/etc/casebridge/routes.yaml"


def test_gateway_probes_scaling_and_disruption_budget() -> None:
    gateway = _one("Deployment", "casebridge-gateway")
    assert gateway["spec"]["replicas"] >= 2
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "serve"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    hpa = _one("HorizontalPodAutoscaler", "casebridge-gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "casebridge-gateway"
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdb = _one("PodDisruptionBudget", "casebridge-gateway")
    labels = gateway["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == labels
    service = _one("Service", "casebridge-gateway")
    assert service["spec"]["selector"] == labels and service["spec"]["type"] == "ClusterIP"


def test_worker_and_migration() -> None:
    worker = _one("Deployment", "casebridge-worker")
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"][0] == "worker"
    pdb = _one("PodDisruptionBudget", "casebridge-worker")
    assert pdb["spec"]["selector"]["matchLabels"] == worker["spec"]["selector"]["matchLabels"]
    job = _one("Job", "casebridge-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]


def _policies() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d["spec"] for d in _documents() if d["kind"] == "NetworkPolicy"}


def _selects(spec: dict[str, Any], component: str) -> bool:
    selector = spec["podSelector"]
    labels = {"app.kubernetes.io/name": "casebridge", "app.kubernetes.io/component": component}
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def test_network_policies_default_deny() -> None:
    deny = _policies()["default-deny-all"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny


def test_only_the_gateway_is_reachable_and_only_from_the_ingress_controller() -> None:
    allowed_in = {
        component
        for spec in _policies().values()
        if "Ingress" in spec["policyTypes"] and spec.get("ingress")
        for component in ("gateway", "worker", "migrate")
        if _selects(spec, component)
    }
    assert allowed_in == {"gateway"}
    sources = _policies()["gateway-from-ingress"]["ingress"][0]["from"]
    namespaces = {s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for s in sources}
    assert namespaces == {"ingress-nginx", "monitoring"}


def test_only_workers_reach_outside_the_cluster() -> None:
    external = {
        component
        for spec in _policies().values()
        for rule in spec.get("egress", [])
        if any("ipBlock" in peer for peer in rule.get("to", []))
        for component in ("gateway", "worker", "migrate")
        if _selects(spec, component)
    }
    assert external == {"worker"}


def test_all_components_reach_postgres_and_rabbitmq() -> None:
    spec = _policies()["store-and-broker"]
    for component in ("gateway", "worker", "migrate"):
        assert _selects(spec, component)
    ports = {p["port"] for rule in spec["egress"] for p in rule["ports"]}
    assert {5432, 5672, 5671} <= ports


def test_the_gateway_trusts_the_ingress_pod_network_as_configured() -> None:
    import json

    from casebridge.gateway.security import is_trusted_proxy

    config = _one("ConfigMap", "casebridge-config")["data"]
    trusted = json.loads(config["CASEBRIDGE_TRUSTED_PROXIES"])
    assert is_trusted_proxy("10.244.3.17", trusted)
    assert not is_trusted_proxy("192.168.1.5", trusted)
    ingress = _one("Ingress", "casebridge-gateway")["metadata"]["annotations"]
    assert config["CASEBRIDGE_CLIENT_CERT_HEADER"] == "ssl-client-subject-dn"
    assert ingress["nginx.ingress.kubernetes.io/auth-tls-verify-client"] == "optional"


def test_redis_holds_the_counters_and_only_gateways_reach_it() -> None:
    config = _one("ConfigMap", "casebridge-config")["data"]
    example = _one("Secret", "casebridge-secrets")["stringData"]
    folder, key = config["CASEBRIDGE_RATE_LIMIT_STORAGE_FILE"].rsplit("/", 1)
    assert folder == "/run/secrets/casebridge" and key in example
    assert example[key].startswith("redis://:") and "@casebridge-redis." in example[key]
    pod = _pod("Deployment", "casebridge-redis")
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert "/run/secrets/casebridge/redis-password" in container["args"][0]
    service = _one("Service", "casebridge-redis")
    labels = _one("Deployment", "casebridge-redis")["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == labels
    policies = _policies()
    into_redis = [s for s in policies.values()
                  if _selects(s, "redis") and "Ingress" in s["policyTypes"] and s.get("ingress")]
    assert len(into_redis) == 1
    (rule,) = into_redis[0]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "casebridge", "app.kubernetes.io/component": "gateway"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]
    gateway_out = policies["gateway-to-redis"]
    assert _selects(gateway_out, "gateway") and not _selects(gateway_out, "worker")
