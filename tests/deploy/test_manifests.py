"""The deployment artefacts: deploy/Dockerfile, deploy/kubernetes/, docker-compose.yaml, Prometheus.

There is no container engine or cluster in CI, so these tests read the files and check what
matters: that every YAML parses, that the security-relevant values are what the security guide
(seed security.md) prescribes, that the pieces are wired to each other (ports, names, paths,
environment variables), and that the container's Hector configuration is valid.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from hector.cli import main
from hector.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
CONFIG = DEPLOY / "config.yaml"
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
SEED_DOC = ROOT.parent / "shared" / "reference" / "seeds" / "security.md"

NAMESPACE = "hector"
SECRET_NAME = "hector-secrets"
PORT = 8080
CONFIG_PATH = "/etc/hector/config.yaml"
DATA_DIR = "/var/lib/hector"

# Values for the variables deploy/config.yaml reads (none is a real credential).
CONTAINER_ENV = {
    "OPENAI_API_KEY": "sk-test-deploy-0001",
    "HECTOR_API_KEY": "hector-test-key-0002",
    "DATABASE_URL": "postgresql+asyncpg://hector:pw@postgres:5432/hector",
    "REDIS_URL": "redis://redis:6379/0",
}

# Verbatim from the seed security.md, "Kubernetes Secrets" and "Kubernetes Network Policies".
SEED_SECRET = """
apiVersion: v1
kind: Secret
metadata:
  name: hector-secrets
  namespace: hector
type: Opaque
stringData:
  OPENAI_API_KEY: sk-...
  ANTHROPIC_API_KEY: sk-ant-...
  DATABASE_PASSWORD: secret
"""

SEED_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
      - name: hector
        envFrom:
        - secretRef:
            name: hector-secrets
"""

SEED_NETWORK_POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: hector
  namespace: hector
spec:
  podSelector:
    matchLabels:
      app: hector
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          name: ingress-nginx
    ports:
    - protocol: TCP
      port: 8080
  egress:
  # Allow database
  - to:
    - podSelector:
        matchLabels:
          app: postgres
    ports:
    - protocol: TCP
      port: 5432
  # Allow HTTPS for LLM APIs
  - to:
    - namespaceSelector: {}
    ports:
    - protocol: TCP
      port: 443
  # Allow DNS
  - to:
    - namespaceSelector: {}
      podSelector:
        matchLabels:
          k8s-app: kube-dns
    ports:
    - protocol: UDP
      port: 53
"""

# ${VAR} and ${VAR:-default}, as hector.config.env expands them.
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def load_docs(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def yaml_files() -> list[Path]:
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml"), COMPOSE])
    assert files, "no YAML files found"
    return files


def manifest(kind: str) -> dict[str, Any]:
    found = [d for p in sorted(K8S.glob("*.yaml")) for d in load_docs(p) if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in deploy/kubernetes, found {len(found)}"
    return found[0]


def policy(name: str) -> dict[str, Any]:
    """The NetworkPolicy called *name* (there are two: the seed's and the additive egress one)."""
    found = [
        d
        for p in sorted(K8S.glob("*.yaml"))
        for d in load_docs(p)
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"expected one NetworkPolicy {name!r}, found {len(found)}"
    return found[0]


def container() -> dict[str, Any]:
    containers = manifest("Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["hector"]
    return containers[0]


def required_vars(text: str) -> set[str]:
    """The variables a config needs set: those referenced without a default."""
    return {m.group(1) for m in _VAR.finditer(text) if m.group(2) is None}


def compose() -> dict[str, Any]:
    [doc] = load_docs(COMPOSE)
    return doc


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


@pytest.fixture
def container_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The container's environment, in an empty working directory (no stray .env is loaded)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    for name, value in CONTAINER_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(CONTAINER_ENV)


# ---- every YAML ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_parses_to_mappings(path: Path) -> None:
    docs = load_docs(path)
    assert docs
    assert all(isinstance(doc, dict) for doc in docs)


def test_kubernetes_manifests_are_one_object_each_in_the_hector_namespace() -> None:
    kinds = {}
    for path in sorted(K8S.glob("*.yaml")):
        [doc] = load_docs(path)
        assert doc["apiVersion"] and doc["metadata"]["name"], path
        kinds[path.name] = doc["kind"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, path
    assert kinds == {
        "namespace.yaml": "Namespace",
        "secret.yaml": "Secret",
        "configmap.yaml": "ConfigMap",
        "deployment.yaml": "Deployment",
        "service.yaml": "Service",
        "networkpolicy.yaml": "NetworkPolicy",
        "networkpolicy-egress.yaml": "NetworkPolicy",
    }
    namespace = manifest("Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# ---- Secret ----------------------------------------------------------------------------------


def test_secret_is_the_seeds_with_placeholders_plus_hector_keys() -> None:
    seed = yaml.safe_load(SEED_SECRET)
    secret = manifest("Secret")
    assert secret["apiVersion"] == seed["apiVersion"]
    assert secret["metadata"]["name"] == seed["metadata"]["name"] == SECRET_NAME
    assert secret["metadata"]["namespace"] == seed["metadata"]["namespace"] == NAMESPACE
    assert secret["type"] == seed["type"] == "Opaque"
    data = secret["stringData"]
    assert "data" not in secret
    assert set(seed["stringData"]) | {"HECTOR_API_KEY", "DATABASE_URL"} <= set(data)
    # Placeholders only: nothing that could be a real credential is committed.
    assert all(isinstance(v, str) and "REPLACE_ME" in v for v in data.values()), data


def test_secret_supplies_every_variable_the_config_requires() -> None:
    needed = required_vars(CONFIG.read_text(encoding="utf-8"))
    assert needed == {"OPENAI_API_KEY", "HECTOR_API_KEY", "DATABASE_URL", "REDIS_URL"}
    assert needed <= set(manifest("Secret")["stringData"])


def test_secret_database_url_reaches_the_postgres_the_network_policy_allows() -> None:
    url = urlsplit(manifest("Secret")["stringData"]["DATABASE_URL"])
    assert url.scheme == "postgresql+asyncpg"
    assert (url.hostname, url.port) == ("postgres", 5432)


# ---- ConfigMap and the container config -----------------------------------------------------


def test_configmap_embeds_exactly_deploy_config_yaml() -> None:
    configmap = manifest("ConfigMap")
    assert configmap["metadata"]["name"] == "hector-config"
    assert configmap["data"] == {"config.yaml": CONFIG.read_text(encoding="utf-8")}


def test_deploy_config_passes_hector_validate(
    container_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(CONFIG), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is True
    assert result["warnings"] == []


@pytest.mark.parametrize("name", sorted(CONTAINER_ENV))
def test_deploy_config_refuses_to_start_without_each_secret(
    name: str,
    container_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(name)
    assert main(["validate", str(CONFIG)]) == 1
    assert name in capsys.readouterr().err


def test_deploy_config_means_the_production_setup(container_env: dict[str, str]) -> None:
    cfg = load_config(CONFIG).config
    server = cfg.server
    assert (server.host, server.port, server.data_dir) == ("0.0.0.0", PORT, DATA_DIR)
    [(store_name, store)] = cfg.session_stores.items()
    assert cfg.defaults.session_store == store_name
    assert store.backend == "sql"
    assert store.url is not None and store.url.get_secret_value() == container_env["DATABASE_URL"]
    assert server.auth.enabled and server.auth.require_auth
    assert [k.get_secret_value() for k in server.auth.api_keys] == [container_env["HECTOR_API_KEY"]]
    assert server.auth.excluded_paths == ["/health", "/.well-known/agent-card.json"]
    limits = server.rate_limiting
    assert limits.enabled and limits.backend == "redis"
    assert limits.redis_url is not None and limits.redis_url.get_secret_value() == container_env["REDIS_URL"]
    assert server.observability.metrics.enabled
    assert server.observability.metrics.endpoint == "/metrics"
    tracing = server.observability.tracing
    assert tracing.enabled and tracing.exporter == "otlp"
    assert tracing.endpoint == "jaeger:4317"
    assert (cfg.logger.format, cfg.logger.level) == ("json", "info")
    [llm] = cfg.llms.values()
    assert llm.type == "openai"
    assert llm.api_key is not None and llm.api_key.get_secret_value() == container_env["OPENAI_API_KEY"]
    assert cfg.agents and all(a.visibility == "public" for a in cfg.agents.values())


def test_deploy_config_tracing_endpoint_follows_the_environment(
    container_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "otel-collector.observability:4317")
    tracing = load_config(CONFIG).config.server.observability.tracing
    assert tracing.endpoint == "otel-collector.observability:4317"


# ---- Deployment ------------------------------------------------------------------------------


def test_deployment_takes_its_environment_from_the_seeds_secret() -> None:
    seed = yaml.safe_load(SEED_DEPLOYMENT)
    [seed_container] = seed["spec"]["template"]["spec"]["containers"]
    deployment = manifest("Deployment")
    assert deployment["apiVersion"] == seed["apiVersion"]
    assert container()["name"] == seed_container["name"]
    assert container()["envFrom"] == seed_container["envFrom"] == [{"secretRef": {"name": SECRET_NAME}}]
    # Secrets come only through the Secret, never as literal env values.
    assert "env" not in container()


def test_deployment_replicas_labels_and_config_mount() -> None:
    deployment = manifest("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert deployment["metadata"]["labels"]["app"] == "hector"
    assert spec["selector"]["matchLabels"] == {"app": "hector"}
    assert spec["template"]["metadata"]["labels"]["app"] == "hector"
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    config_mount = mounts["/etc/hector"]
    assert config_mount.get("readOnly") is True
    assert volumes[config_mount["name"]]["configMap"]["name"] == manifest("ConfigMap")["metadata"]["name"]
    assert container()["args"] == dockerfile_cmd()
    assert CONFIG_PATH in container()["args"]
    assert [p["containerPort"] for p in container()["ports"]] == [PORT]


def test_deployment_probes() -> None:
    c = container()
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": PORT}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": PORT}


def test_deployment_resources_are_bounded() -> None:
    resources = container()["resources"]
    for section in ("requests", "limits"):
        assert set(resources[section]) == {"cpu", "memory"}, section


def test_deployment_security_context() -> None:
    pod = manifest("Deployment")["spec"]["template"]["spec"]
    c = container()
    sc = c["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc.get("privileged", False) is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    uid = dockerfile_uid()
    assert uid != 0
    assert pod["securityContext"]["runAsUser"] == sc["runAsUser"] == uid
    assert pod["automountServiceAccountToken"] is False
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


def test_deployment_writable_paths_are_emptydirs() -> None:
    volumes = {v["name"]: v for v in manifest("Deployment")["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    assert {DATA_DIR, "/tmp"} <= set(mounts)
    for path in (DATA_DIR, "/tmp"):
        assert "emptyDir" in volumes[mounts[path]["name"]], path
    writable = {p for p, m in mounts.items() if not m.get("readOnly")}
    assert writable == {DATA_DIR, "/tmp"}


# ---- Service and NetworkPolicy ---------------------------------------------------------------


def test_service_routes_to_the_hector_pods_on_8080() -> None:
    svc = manifest("Service")
    assert svc["spec"]["selector"] == {"app": "hector"}
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    [port] = svc["spec"]["ports"]
    named = {p["name"]: p["containerPort"] for p in container()["ports"]}
    target = port["targetPort"]
    assert (named[target] if isinstance(target, str) else target) == PORT


def test_network_policy_equals_the_seeds() -> None:
    seed = yaml.safe_load(SEED_NETWORK_POLICY)
    ours = policy("hector")
    assert ours["apiVersion"] == seed["apiVersion"]
    assert ours["metadata"] == seed["metadata"]
    assert ours["spec"] == seed["spec"]


def test_network_policy_rules() -> None:
    spec = policy("hector")["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app": "hector"}}
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert spec["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}}],
            "ports": [{"protocol": "TCP", "port": PORT}],
        }
    ]
    postgres, https, dns = spec["egress"]
    assert postgres == {
        "to": [{"podSelector": {"matchLabels": {"app": "postgres"}}}],
        "ports": [{"protocol": "TCP", "port": 5432}],
    }
    assert https == {"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": 443}]}
    assert dns == {
        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}],
    }


def test_network_policies_apply_to_the_deployment_pods() -> None:
    labels = manifest("Deployment")["spec"]["template"]["metadata"]["labels"]
    for name in ("hector", "hector-egress"):
        selector = policy(name)["spec"]["podSelector"]["matchLabels"]
        assert selector.items() <= labels.items(), name


@dataclass(frozen=True)
class Peer:
    """Where a Hector pod connects: an address outside the cluster, or a pod in it."""

    port: int
    ip: str | None = None
    namespace: str | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)
    namespace_labels: dict[str, str] = field(default_factory=dict)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are modelled here"
    return dict(selector.get("matchLabels", {})).items() <= labels.items()


def _peer_matches(rule_peer: dict[str, Any], peer: Peer) -> bool:
    """NetworkPolicy peer semantics as most CNIs apply them: an ipBlock matches addresses
    outside the cluster; pod and namespace selectors match pods, never outside addresses."""
    if "ipBlock" in rule_peer:
        if peer.ip is None:
            return False
        address = ipaddress.ip_address(peer.ip)
        block = rule_peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if peer.namespace is None:
        return False
    if "namespaceSelector" in rule_peer:
        in_namespace = _selects(rule_peer["namespaceSelector"], peer.namespace_labels)
    else:
        in_namespace = peer.namespace == NAMESPACE  # a bare podSelector: the policy's namespace
    return in_namespace and _selects(rule_peer.get("podSelector", {}), peer.pod_labels)


def egress_allowed(names: list[str], peer: Peer) -> bool:
    """Whether any of the policies *names* lets a Hector pod open *peer* over TCP (they add up)."""
    for name in names:
        for rule in policy(name)["spec"].get("egress", []):
            ports = rule.get("ports", [])
            if ports and not any(p["port"] == peer.port and p.get("protocol", "TCP") == "TCP" for p in ports):
                continue
            if "to" not in rule or any(_peer_matches(to, peer) for to in rule["to"]):
                return True
    return False


SEED_ONLY = ["hector"]
BOTH = ["hector", "hector-egress"]
OPENAI = Peer(443, ip="162.159.140.245")
METADATA = Peer(443, ip="169.254.169.254")


def test_egress_policy_is_additive_and_leaves_ingress_alone() -> None:
    egress = policy("hector-egress")
    assert egress["metadata"]["namespace"] == NAMESPACE
    assert egress["spec"]["podSelector"] == policy("hector")["spec"]["podSelector"]
    # Egress only: a policy listing Ingress would take part in deciding ingress too.
    assert egress["spec"]["policyTypes"] == ["Egress"]
    assert "ingress" not in egress["spec"]


def test_https_reaches_external_apis_only_with_the_egress_policy() -> None:
    assert not egress_allowed(SEED_ONLY, OPENAI), "the seed's namespaceSelector matches no outside address"
    assert egress_allowed(BOTH, OPENAI)
    assert egress_allowed(BOTH, Peer(443, ip="8.8.8.8"))
    assert not egress_allowed(BOTH, Peer(80, ip="8.8.8.8")), "plain HTTP stays closed"
    assert not egress_allowed(BOTH, Peer(5432, ip="8.8.8.8")), "only 443 goes outside the cluster"


def test_cloud_metadata_service_stays_unreachable() -> None:
    assert not egress_allowed(BOTH, METADATA)
    assert not egress_allowed(BOTH, Peer(80, ip="169.254.169.254"))
    [https] = [r for r in policy("hector-egress")["spec"]["egress"] if "ipBlock" in r["to"][0]]
    assert https == {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }


def test_services_of_the_deploy_config_are_reachable(container_env: dict[str, str]) -> None:
    """PostgreSQL, Redis and the OTLP collector, at the ports the deploy config uses, in this
    namespace or another: the seed's policy alone allows only the first, and only here."""
    cfg = load_config(CONFIG).config
    [store] = cfg.session_stores.values()
    assert store.url is not None and cfg.server.rate_limiting.redis_url is not None
    database = urlsplit(store.url.get_secret_value()).port
    redis = urlsplit(cfg.server.rate_limiting.redis_url.get_secret_value()).port
    tracing = cfg.server.observability.tracing.endpoint
    assert tracing is not None
    collector = int(tracing.rsplit(":", 1)[1])
    assert (database, redis, collector) == (5432, 6379, 4317)
    postgres_here = Peer(5432, namespace=NAMESPACE, pod_labels={"app": "postgres"})
    assert egress_allowed(SEED_ONLY, postgres_here)
    for port, labels in [(5432, {"app": "postgres"}), (6379, {"app": "redis"}), (4317, {"app": "jaeger"})]:
        for namespace in (NAMESPACE, "observability"):
            peer = Peer(port, namespace=namespace, pod_labels=labels)
            assert egress_allowed(BOTH, peer), peer
            if (port, namespace) != (5432, NAMESPACE):
                assert not egress_allowed(SEED_ONLY, peer), peer
    assert egress_allowed(BOTH, Peer(4318, namespace="observability", pod_labels={"app": "collector"}))
    # A port nobody listed stays closed, inside the cluster too.
    assert not egress_allowed(BOTH, Peer(8080, namespace="other", pod_labels={"app": "web"}))


def test_dns_over_udp_and_tcp_only_to_kube_dns() -> None:
    dns_rules = [
        rule
        for name in BOTH
        for rule in policy(name)["spec"]["egress"]
        if any(p["port"] == 53 for p in rule["ports"])
    ]
    protocols = {p["protocol"] for rule in dns_rules for p in rule["ports"]}
    assert protocols == {"UDP", "TCP"}
    kube_dns = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    assert all(rule["to"] == [kube_dns] for rule in dns_rules)


@pytest.mark.skipif(not SEED_DOC.is_file(), reason="the seed security.md is not checked out here")
@pytest.mark.parametrize("block", [SEED_SECRET, SEED_DEPLOYMENT, SEED_NETWORK_POLICY])
def test_seed_examples_above_are_verbatim(block: str) -> None:
    assert block.strip() in SEED_DOC.read_text(encoding="utf-8")


# ---- docker-compose.yaml and Prometheus ------------------------------------------------------


def env_of(name: str) -> dict[str, str]:
    env = service(name).get("environment", {})
    assert isinstance(env, dict), f"{name}: use the mapping form of environment"
    return env


def test_compose_services() -> None:
    services = compose()["services"]
    assert set(services) == {"hector", "postgres", "redis", "prometheus", "jaeger"}
    assert service("hector")["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}
    assert service("postgres")["image"].split(":")[1].split(".")[0] == "16"
    assert service("redis")["image"].startswith("redis:")
    assert service("prometheus")["image"].startswith("prom/prometheus:")
    assert service("jaeger")["image"].startswith("jaegertracing/all-in-one:")


def test_compose_hector_wiring() -> None:
    env = env_of("hector")
    # Every variable the config needs is given; the credentials must be supplied by the user.
    assert required_vars(CONFIG.read_text(encoding="utf-8")) <= set(env)
    for name in ("OPENAI_API_KEY", "HECTOR_API_KEY"):
        assert env[name].startswith("${" + name + ":?"), env[name]
    pg = env_of("postgres")
    db = urlsplit(env["DATABASE_URL"])
    assert db.scheme == "postgresql+asyncpg"
    assert (db.hostname, db.port, db.path) == ("postgres", 5432, "/" + pg["POSTGRES_DB"])
    assert db.username == pg["POSTGRES_USER"]
    assert env["DATABASE_URL"].split("@")[0].endswith(":" + pg["POSTGRES_PASSWORD"])
    redis = urlsplit(env["REDIS_URL"])
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "jaeger:4317"
    hector = service("hector")
    assert f"./deploy/config.yaml:{CONFIG_PATH}:ro" in hector["volumes"]
    assert any(v.endswith(":" + DATA_DIR) for v in hector["volumes"])
    assert hector["read_only"] is True
    assert "/tmp" in hector["tmpfs"]
    assert hector["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in hector["security_opt"]
    assert f"127.0.0.1:{PORT}:{PORT}" in hector["ports"]


def test_compose_startup_order_waits_for_healthy_dependencies() -> None:
    depends = service("hector")["depends_on"]
    for name in ("postgres", "redis"):
        assert depends[name] == {"condition": "service_healthy"}
        assert service(name)["healthcheck"]["test"]
    assert "pg_isready" in " ".join(service("postgres")["healthcheck"]["test"])
    assert "jaeger" in depends
    assert service("prometheus")["depends_on"]["hector"] == {"condition": "service_healthy"}


def test_compose_databases_are_not_published() -> None:
    assert "ports" not in service("postgres")
    assert "ports" not in service("redis")
    for name, svc in compose()["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_compose_jaeger_accepts_otlp() -> None:
    jaeger = service("jaeger")
    assert env_of("jaeger")["COLLECTOR_OTLP_ENABLED"] == "true"
    published = {p.rsplit(":", 1)[1].split()[0] for p in jaeger["ports"]}
    assert {"4317", "4318", "16686"} <= published


def test_prometheus_scrapes_hector_metrics_with_the_api_key() -> None:
    [prom] = load_docs(DEPLOY / "prometheus.yml")
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    job = jobs["hector"]
    assert job.get("scheme", "http") == "http"
    assert job["metrics_path"] == "/metrics"
    assert [t for sc in job["static_configs"] for t in sc["targets"]] == [f"hector:{PORT}"]
    # Hector requires auth: Prometheus reads the key from the compose secret fed by HECTOR_API_KEY.
    assert job["authorization"]["type"] == "Bearer"
    secret_name = job["authorization"]["credentials_file"].removeprefix("/run/secrets/")
    assert secret_name in service("prometheus")["secrets"]
    assert compose()["secrets"][secret_name] == {"environment": "HECTOR_API_KEY"}
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in service("prometheus")["volumes"]


# ---- Dockerfile ------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    out = []
    buf = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1].strip() + " "
            continue
        buf += line
        keyword, _, rest = buf.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buf = ""
    assert not buf, "the Dockerfile ends inside a continuation line"
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "FROM":
            result.append([])
        assert result, "instruction before the first FROM"
        result[-1].append((keyword, rest))
    return result


def final_stage(keyword: str) -> list[str]:
    return [rest for k, rest in stages()[-1] if k == keyword]


def dockerfile_uid() -> int:
    [user] = final_stage("USER")
    return int(user.split(":")[0])


def dockerfile_cmd() -> list[str]:
    [cmd] = final_stage("CMD")
    return list(json.loads(cmd))


def copies() -> list[tuple[list[str], list[str]]]:
    """``(flags, sources)`` of every COPY."""
    out = []
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY":
            continue
        args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = [a for a in args if a.startswith("--")]
        paths = [a for a in args if not a.startswith("--")]
        out.append((flags, paths[:-1]))
    return out


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    froms = [stage[0][1] for stage in stages()]
    assert len(froms) >= 2
    assert all(f.split()[0] == "python:3.11-slim" for f in froms)
    final = stages()[-1]
    assert ("COPY", "--from=build /opt/venv /opt/venv") in final


def test_dockerfile_installs_the_project_non_editable() -> None:
    runs = " ".join(rest for k, rest in dockerfile_instructions() if k == "RUN")
    assert "pip install --no-cache-dir ." in runs
    assert "pip install -e" not in runs
    assert "--editable" not in runs


def test_dockerfile_final_image_has_no_build_tools() -> None:
    runs = " ".join(final_stage("RUN"))
    for tool in ("apt-get install", "gcc", "build-essential", "pip install", "curl", "wget"):
        assert tool not in runs, tool


def test_dockerfile_runs_as_non_root() -> None:
    [user] = final_stage("USER")
    uid = dockerfile_uid()
    assert user.split(":")[0].isdigit(), "a numeric USER lets Kubernetes verify runAsNonRoot"
    assert uid != 0 and user.split(":")[-1] != "0"
    # The user must come last: nothing after it may switch back to root.
    assert [k for k, _ in stages()[-1]].index("USER") > max(
        i for i, (k, _) in enumerate(stages()[-1]) if k in ("RUN", "COPY")
    )


def test_dockerfile_data_dir_is_writable_by_the_user() -> None:
    runs = " ".join(final_stage("RUN"))
    assert f"mkdir -p {DATA_DIR}" in runs
    assert f"chown hector:hector {DATA_DIR}" in runs
    assert "--uid 10001" in runs and dockerfile_uid() == 10001
    assert json.loads(final_stage("VOLUME")[0]) == [DATA_DIR]


def test_dockerfile_port_healthcheck_entrypoint_cmd() -> None:
    assert final_stage("EXPOSE") == [str(PORT)]
    [healthcheck] = final_stage("HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    probe = json.loads(command)
    assert probe[:2] == ["python", "-c"]
    assert "urllib.request" in probe[2]
    assert f"http://127.0.0.1:{PORT}/health" in probe[2]
    compile(probe[2], "<healthcheck>", "exec")
    assert json.loads(final_stage("ENTRYPOINT")[0]) == ["hector"]
    assert dockerfile_cmd() == ["serve", "--config", CONFIG_PATH, "--host", "0.0.0.0"]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether *path* (or a folder above it) matches a .dockerignore pattern (no ! rules)."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch(prefix, pattern) for prefix in prefixes for pattern in patterns)


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "re-include rules are not checked here"
    return patterns


def test_every_path_the_dockerfile_copies_exists_and_is_in_the_context() -> None:
    patterns = dockerignore_patterns()
    sources = [
        src for flags, srcs in copies() if not any(f.startswith("--from") for f in flags) for src in srcs
    ]
    assert {"pyproject.toml", "README.md", "src/", "deploy/config.yaml"} <= set(sources)
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
        assert not dockerignored(src, patterns), f"COPY {src}: excluded by .dockerignore"


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    patterns = dockerignore_patterns()
    for path in (".venv", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hector", ".env"):
        assert dockerignored(path, patterns), path
    assert dockerignored(".env.local", patterns)
    assert dockerignored("src/hector/__pycache__/x.pyc", patterns)


def test_image_default_config_is_the_deploy_config() -> None:
    assert ("COPY", f"deploy/config.yaml {CONFIG_PATH}") in stages()[-1]


# ---- README ----------------------------------------------------------------------------------


def test_readme_documents_the_deployment() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Deployment\n", 1)[1].split("\n## ", 1)[0]
    for text in ("docker compose up", "kubectl apply -f deploy/kubernetes/", "deploy/Dockerfile"):
        assert text in section, text
