"""The teardown guard: its handler's logic against a fake Kubernetes API and a fake clock
(no network), and what the synthesized cluster stack holds: the custom resource in the
VPC, deleted before the controllers (DependsOn, transitively), its access entry without
access policies and its ClusterRole with exactly the rules the handler needs."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.parse

import pytest

from vllm_eks.constructs import teardown
from vllm_eks.constructs.cluster_handlers import cleanup
from vllm_eks.constructs.cluster_handlers import index as guard
from vllm_eks.stacks import CLUSTER_STACK_ID

from .support import KUBERNETES_RESOURCE, parse_manifest

CLUSTER = CLUSTER_STACK_ID
BUDGET = 780  # the handler's 13 minutes

INGRESSES = "/apis/networking.k8s.io/v1/ingresses"
SERVICES = "/api/v1/services"
NODEPOOLS = "/apis/karpenter.sh/v1/nodepools"
NODECLAIMS = "/apis/karpenter.sh/v1/nodeclaims"


# -- fakes --------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.time = 0.0

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.time += seconds


class FakeCluster:
    """The Kubernetes API as the guard sees it. An object deleted with a finalizer stays
    (with a deletionTimestamp) for `linger` seconds, as the controllers keep it until its
    AWS resource is gone; None: forever (a stuck controller)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.objects: dict[str, dict[tuple, dict]] = {
            INGRESSES: {}, SERVICES: {}, NODEPOOLS: {}, NODECLAIMS: {}}
        self.linger: dict[tuple, float | None] = {}
        self.deleted_at: dict[tuple, float] = {}
        self.calls: list[tuple[float, str, str]] = []
        self.missing: set[str] = set()  # collections answering 404 (CRD not installed)
        self.failures: list[tuple[int, dict]] = []  # answers to the next requests

    def add(self, collection: str, name: str, namespace: str | None = None,
            linger: float | None = 0, **spec) -> None:
        key = (collection, namespace, name)
        meta = {"name": name, "uid": f"uid-{name}-{len(self.linger)}"}
        if namespace:
            meta["namespace"] = namespace
        self.objects[collection][key] = {"metadata": meta, "spec": spec}
        self.linger[key] = linger

    def _expire(self) -> None:
        for key, when in list(self.deleted_at.items()):
            linger = self.linger[key]
            if linger is not None and self.clock.time >= when + linger:
                self.objects[key[0]].pop(key, None)
                del self.deleted_at[key]

    def request(self, method: str, path: str):
        self.calls.append((self.clock.time, method, path))
        if self.failures:
            return self.failures.pop(0)
        self._expire()
        collection, namespace, name = self._parse(path)
        if collection in self.missing:
            return 404, {"kind": "Status", "code": 404}
        if method == "GET" and name is None:
            return 200, {"items": [json.loads(json.dumps(o))
                                   for o in self.objects[collection].values()]}
        key = (collection, namespace, name)
        if method == "DELETE" and key in self.objects[collection]:
            obj = self.objects[collection][key]
            obj["metadata"].setdefault("deletionTimestamp", f"t={self.clock.time}")
            self.deleted_at.setdefault(key, self.clock.time)
            self._expire()
            return 200, obj
        return 404, {"kind": "Status", "code": 404}

    @staticmethod
    def _parse(path: str):
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        prefix = parts[:2] if parts[0] == "api" else parts[:3]
        rest = parts[len(prefix):]
        namespace = None
        if rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        collection = "/" + "/".join(prefix + [rest[0]])
        return collection, namespace, (rest[1] if len(rest) > 1 else None)

    def deletes(self) -> list[str]:
        return [path for _, method, path in self.calls if method == "DELETE"]

    def remaining(self) -> dict[str, list]:
        self._expire()
        return {c: sorted(k[2] for k in objs) for c, objs in self.objects.items() if objs}


def event(request_type: str, **extra) -> dict:
    return {
        "RequestType": request_type,
        "ResponseURL": "https://cloudformation-custom-resource-response.example/abc",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/VllmClusterStack/1",
        "RequestId": "request-1",
        "LogicalResourceId": "TeardownGuardE873C1CD",
        "ResourceType": teardown.RESOURCE_TYPE,
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:x",
            "ClusterName": "vllm-eks",
            "ClusterEndpoint": "https://ABC.gr7.us-east-1.eks.amazonaws.com",
            "CertificateAuthorityData": "LS0t",
        },
        **extra,
    }


class Run:
    """One invocation of `guard.process` with fakes; what it sent and logged."""

    def __init__(self, cluster: FakeCluster | None = None, status: str = "DELETE_IN_PROGRESS"):
        self.clock = cluster.clock if cluster else FakeClock()
        self.cluster = cluster
        self.status = status
        self.sent: list[tuple[str, dict]] = []
        self.logs: list[str] = []
        self.connected = 0

    def connect(self, properties: dict) -> cleanup.Api:
        self.connected += 1
        assert properties["ClusterName"] == "vllm-eks"
        assert self.cluster is not None, "the guard talked to Kubernetes"
        return cleanup.Api(self.cluster.request, log=self.logs.append)

    def stack_status(self, stack_id: str) -> str:
        assert stack_id == event("Delete")["StackId"]
        if isinstance(self.status, Exception):
            raise self.status
        return self.status

    def __call__(self, request: dict) -> dict:
        response = guard.process(
            request, budget_seconds=BUDGET, connect=self.connect, clock=self.clock,
            stack_status=self.stack_status,
            put=lambda url, body: self.sent.append((url, json.loads(body))),
            log=self.logs.append)
        assert self.sent == [(request["ResponseURL"], response)], "exactly one response"
        return response


def populated(linger_lb: float | None = 40, linger_node: float | None = 120) -> FakeCluster:
    cluster = FakeCluster(FakeClock())
    cluster.add(INGRESSES, "vllm-router", "inference", linger=linger_lb)
    cluster.add(INGRESSES, "grafana", "monitoring", linger=linger_lb)
    cluster.add(SERVICES, "nlb", "inference", linger=linger_lb, type="LoadBalancer")
    cluster.add(SERVICES, "vllm", "inference", type="ClusterIP")
    cluster.add(SERVICES, "kubernetes", "default", type="ClusterIP")
    cluster.add(NODEPOOLS, "gpu")
    cluster.add(NODEPOOLS, "general")
    for name in ("gpu-a1b2c", "gpu-d3e4f", "general-x9y8z"):
        cluster.add(NODECLAIMS, name, linger=linger_node)
    return cluster


# -- Create / Update ----------------------------------------------------------------------------

@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_do_nothing(request_type):
    run = Run(cluster=None, status=RuntimeError("the stack status was read"))
    extra = {"PhysicalResourceId": "vllm-eks-teardown-guard"} if request_type == "Update" else {}
    response = run(event(request_type, **extra))
    assert response["Status"] == "SUCCESS"
    assert run.connected == 0 and run.clock.time == 0
    # Stable: a new physical ID on Update would make CloudFormation delete the old one.
    assert response["PhysicalResourceId"] == "vllm-eks-teardown-guard"


# -- Delete -----------------------------------------------------------------------------------

def test_delete_removes_load_balancers_first_then_karpenter_nodes_and_waits():
    cluster = populated()
    response = Run(cluster)(event("Delete", PhysicalResourceId="vllm-eks-teardown-guard"))
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert response["PhysicalResourceId"] == "vllm-eks-teardown-guard"
    assert cluster.remaining() == {SERVICES: ["kubernetes", "vllm"]}
    assert cluster.deletes() == [
        "/apis/networking.k8s.io/v1/namespaces/inference/ingresses/vllm-router",
        "/apis/networking.k8s.io/v1/namespaces/monitoring/ingresses/grafana",
        "/api/v1/namespaces/inference/services/nlb",
        "/apis/karpenter.sh/v1/nodepools/gpu",
        "/apis/karpenter.sh/v1/nodepools/general",
        "/apis/karpenter.sh/v1/nodeclaims/gpu-a1b2c",
        "/apis/karpenter.sh/v1/nodeclaims/gpu-d3e4f",
        "/apis/karpenter.sh/v1/nodeclaims/general-x9y8z",
    ]
    # NodePools go only once the load balancers are gone (40 s), and SUCCESS only once
    # the instances are (120 s after their NodeClaims were deleted).
    pools_deleted = next(t for t, m, p in cluster.calls if m == "DELETE" and "nodepools" in p)
    assert pools_deleted >= 40
    assert 0 <= cluster.clock.time - (pools_deleted + 120) < 2 * cleanup.POLL_SECONDS
    assert "load balancers: 3 deleted; Karpenter nodes: 5 deleted" in response["Reason"]


def test_a_nodeclaim_launched_while_waiting_is_deleted_too():
    cluster = populated(linger_lb=0)
    original, launched = cluster.request, []

    def request(method, path):
        if cluster.clock.time == 20 and not launched:
            cluster.add(NODECLAIMS, "gpu-late", linger=30)
            launched.append(True)
        return original(method, path)

    cluster.request = request
    assert Run(cluster)(event("Delete"))["Status"] == "SUCCESS"
    assert "/apis/karpenter.sh/v1/nodeclaims/gpu-late" in cluster.deletes()
    assert NODECLAIMS not in cluster.remaining()


def test_timeout_fails_the_delete_and_names_what_is_left():
    cluster = populated(linger_node=None)  # Karpenter never finishes terminating
    response = Run(cluster)(event("Delete"))
    assert response["Status"] == "FAILED"
    reason = response["Reason"]
    for name in ("nodeclaim gpu-a1b2c", "nodeclaim gpu-d3e4f", "nodeclaim general-x9y8z",
                 "kubectl get nodepools,nodeclaims",
                 "kubectl -n kube-system logs deploy/karpenter",
                 "retry the stack deletion"):
        assert name in reason, reason
    assert "load balancers still present" not in reason  # those were gone in time
    # It stopped within its budget, leaving time to answer inside the Lambda's 15 minutes.
    assert BUDGET - cleanup.POLL_SECONDS <= cluster.clock.time <= BUDGET


def test_stuck_load_balancers_still_let_karpenter_nodes_go_then_fail():
    cluster = populated(linger_lb=None)  # the ALB controller cannot delete the ALB
    response = Run(cluster)(event("Delete"))
    assert response["Status"] == "FAILED"
    assert "ingress inference/vllm-router" in response["Reason"]
    assert "service (type LoadBalancer) inference/nlb" in response["Reason"]
    assert "kubectl get ingress -A" in response["Reason"]
    # The instances were still asked to terminate (they bill); only the wait was cut.
    assert "/apis/karpenter.sh/v1/nodeclaims/gpu-a1b2c" in cluster.deletes()


def test_a_long_list_of_leftovers_fits_in_a_cloudformation_response():
    cluster = FakeCluster(FakeClock())
    for i in range(500):
        cluster.add(NODECLAIMS, f"gpu-{i:05d}-{'x' * 40}", linger=None)
    response = Run(cluster)(event("Delete"))
    assert response["Status"] == "FAILED" and "and 480 more" in response["Reason"]
    assert len(json.dumps(response).encode()) < 4096


def test_404_means_gone():
    cluster = populated(linger_lb=0, linger_node=0)
    cluster.missing = {NODEPOOLS, NODECLAIMS}  # Karpenter's CRDs are already gone
    response = Run(cluster)(event("Delete"))
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert not any("karpenter.sh" in p for p in cluster.deletes())

    # Objects deleted by someone else between the guard's list and its delete.
    cluster = populated(linger_lb=0, linger_node=0)
    original = cluster.request

    def request(method, path):
        if method == "DELETE":
            collection, namespace, name = cluster._parse(path)
            cluster.objects[collection].pop((collection, namespace, name))
        return original(method, path)

    cluster.request = request
    response = Run(cluster)(event("Delete"))
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert len(cluster.deletes()) == 8 and cluster.remaining() == {
        SERVICES: ["kubernetes", "vllm"]}


def test_transient_api_errors_are_retried():
    cluster = populated(linger_lb=0, linger_node=0)
    cluster.failures = [(503, {"message": "unavailable"}), (None, {"message": "timed out"})]
    response = Run(cluster)(event("Delete"))
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert cluster.remaining() == {SERVICES: ["kubernetes", "vllm"]}


def test_an_api_that_never_answers_fails_with_the_error():
    cluster = populated()
    cluster.request = lambda method, path: (None, {"message": "connection refused"})
    response = Run(cluster)(event("Delete"))
    assert response["Status"] == "FAILED"
    assert "did not answer" in response["Reason"] and "connection refused" in response["Reason"]


def test_access_denied_fails_at_once():
    cluster = populated()
    cluster.request = lambda method, path: (403, {"message": "forbidden"})
    response = Run(cluster)(event("Delete"))
    assert response["Status"] == "FAILED" and cluster.clock.time == 0
    assert "access entry" in response["Reason"] and "ClusterRole" in response["Reason"]


@pytest.mark.parametrize("status", ["UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
                                    "UPDATE_ROLLBACK_IN_PROGRESS",
                                    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"])
def test_a_delete_outside_a_stack_deletion_removes_nothing(status):
    run = Run(cluster=None, status=status)
    response = run(event("Delete", PhysicalResourceId="vllm-eks-teardown-guard"))
    assert response["Status"] == "SUCCESS" and status in response["Reason"]
    assert run.connected == 0


@pytest.mark.parametrize("status", ["DELETE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"])
def test_a_stack_deletion_or_failed_creation_tears_down(status):
    cluster = populated(linger_lb=0, linger_node=0)
    assert Run(cluster, status=status)(event("Delete"))["Status"] == "SUCCESS"
    assert len(cluster.deletes()) == 8


def test_any_error_is_reported_as_failed():
    run = Run(cluster=None, status=RuntimeError("AccessDenied on DescribeStacks"))
    response = run(event("Delete", PhysicalResourceId="vllm-eks-teardown-guard"))
    assert response == {
        "Status": "FAILED",
        "Reason": "Teardown guard Delete failed: RuntimeError: AccessDenied on DescribeStacks",
        "PhysicalResourceId": "vllm-eks-teardown-guard",
        "StackId": event("Delete")["StackId"],
        "RequestId": "request-1",
        "LogicalResourceId": "TeardownGuardE873C1CD",
        "NoEcho": False,
        "Data": {},
    }


def test_the_handler_stops_waiting_before_the_lambda_times_out(monkeypatch):
    seen = {}
    monkeypatch.setattr(guard, "process", lambda request, **kwargs: seen.update(kwargs))

    class Context:
        def __init__(self, remaining_ms):
            self.remaining_ms = remaining_ms

        def get_remaining_time_in_millis(self):
            return self.remaining_ms

    guard.handler(event("Create"), Context(900_000))
    assert seen["budget_seconds"] == 13 * 60
    assert seen["connect"] is guard.connect and seen["put"] is guard.put_response
    guard.handler(event("Create"), Context(600_000))
    assert seen["budget_seconds"] == 600 - guard.RESPONSE_MARGIN_SECONDS


def test_paths_quote_names():
    assert cleanup.INGRESSES.item("inference", "a b") == (
        "/apis/networking.k8s.io/v1/namespaces/inference/ingresses/a%20b")
    assert cleanup.NODECLAIMS.item(None, "gpu-1") == "/apis/karpenter.sh/v1/nodeclaims/gpu-1"
    assert cleanup.LOAD_BALANCER_SERVICES.collection() == SERVICES


# -- the EKS token ------------------------------------------------------------------------------

def test_eks_token_is_a_presigned_get_caller_identity_for_the_cluster():
    import botocore.session

    session = botocore.session.get_session()
    session.set_credentials("AKIDEXAMPLE", "secret", "session-token")
    token = guard.eks_token("vllm-eks", "us-east-1", session=session)
    prefix, encoded = token.split(".", 1)
    assert prefix == "k8s-aws-v1" and "=" not in encoded
    url = urllib.parse.urlsplit(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
                                .decode())
    query = dict(urllib.parse.parse_qsl(url.query))
    assert (url.scheme, url.netloc, url.path) == ("https", "sts.us-east-1.amazonaws.com", "/")
    assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and query["X-Amz-Expires"] == "60"
    assert query["X-Amz-Credential"].startswith("AKIDEXAMPLE/")
    assert query["X-Amz-Credential"].endswith("/us-east-1/sts/aws4_request")
    assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert query["X-Amz-Security-Token"] == "session-token"
    assert guard.eks_token("other", "us-east-1", session=session) != token


# -- the ClusterRole allows exactly what the handler does -------------------------------------

def test_the_cluster_role_covers_exactly_the_handlers_kinds():
    used = {(k.group_version.rpartition("/")[0], k.plural)
            for phase in cleanup.PHASES for k in phase.delete + phase.wait_for}
    granted = {(group, resource) for rule in teardown.RBAC_RULES
               for group in rule["apiGroups"] for resource in rule["resources"]}
    assert used == granted


# -- the synthesized cluster stack --------------------------------------------------------------

def resources(env) -> dict[str, dict]:
    return env.templates[CLUSTER]["Resources"]


def find(env, resource_type: str, **properties) -> tuple[str, dict]:
    found = [(k, r) for k, r in resources(env).items() if r["Type"] == resource_type
             and all(r["Properties"].get(p) == v for p, v in properties.items())]
    assert len(found) == 1, (resource_type, properties, [k for k, _ in found])
    return found[0]


def references(value) -> set[str]:
    """Logical IDs a value refers to (Ref, Fn::GetAtt): dependencies as well."""
    found = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def dependencies(env, logical_id: str) -> set[str]:
    """Everything CloudFormation creates before `logical_id` (and so deletes after it):
    DependsOn and references, transitively."""
    template = resources(env)
    seen, todo = set(), [logical_id]
    while todo:
        resource = template[todo.pop()]
        direct = set(resource.get("DependsOn", [])) | references(resource.get("Properties", {}))
        for dep in direct & template.keys() - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def guard_resource(env) -> tuple[str, dict]:
    return find(env, teardown.RESOURCE_TYPE)


def nodepools_manifest(env) -> str:
    (logical_id,) = [k for k, r in resources(env).items() if r["Type"] == KUBERNETES_RESOURCE
                     and any(o["kind"] == "NodePool"
                             for o in parse_manifest(r["Properties"]["Manifest"]))]
    return logical_id


def test_the_guard_is_deleted_before_the_controllers_and_what_they_manage(default_env):
    guard_id, _ = guard_resource(default_env)
    before = dependencies(default_env, guard_id)
    karpenter, _ = find(default_env, "Custom::AWSCDK-EKS-HelmChart", Chart="karpenter")
    karpenter_crds, _ = find(default_env, "Custom::AWSCDK-EKS-HelmChart", Chart="karpenter-crd")
    alb, _ = find(default_env, "Custom::AWSCDK-EKS-HelmChart",
                  Chart="aws-load-balancer-controller")
    pools = nodepools_manifest(default_env)
    access_entry, _ = find(default_env, "AWS::EKS::AccessEntry",
                           KubernetesGroups=[teardown.KUBERNETES_GROUP])
    rbac = rbac_manifest_id(default_env)
    # The controllers' identities, which they need to delete what they own.
    identities = {k for k, r in resources(default_env).items()
                  if r["Type"] == "AWS::EKS::PodIdentityAssociation"
                  and r["Properties"]["ServiceAccount"] in ("karpenter",
                                                            "aws-load-balancer-controller")}
    assert len(identities) == 2
    required = {karpenter, karpenter_crds, alb, pools, access_entry, rbac, *identities}
    assert required <= before, sorted(required - before)
    # ... and nothing of those is created after (deleted before) the guard.
    assert not any(guard_id in dependencies(default_env, r) for r in required)


def test_the_guard_runs_in_the_vpc_like_the_kubectl_provider(default_env):
    _, custom = guard_resource(default_env)
    props = custom["Properties"]
    function_id = props["ServiceToken"]["Fn::GetAtt"][0]
    function = resources(default_env)[function_id]["Properties"]
    (kubectl_handler,) = [r["Properties"] for r in resources(default_env).values()
                          if r["Type"] == "AWS::Lambda::Function"
                          and r["Properties"].get("Description", "").startswith(
                              "onEvent handler for EKS kubectl")]
    assert function["VpcConfig"] == kubectl_handler["VpcConfig"]
    cluster_id, _ = find(default_env, "AWS::EKS::Cluster")
    assert function["VpcConfig"]["SecurityGroupIds"] == [
        {"Fn::GetAtt": [cluster_id, "ClusterSecurityGroupId"]}]
    assert function["Runtime"] in ("python3.12", "python3.13")
    assert function["Timeout"] == 900 and function["Handler"] == "index.handler"
    assert function["FunctionName"] == "vllm-eks-teardown-guard"
    log_group = resources(default_env)[function["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["LogGroupName"] == "/aws/lambda/vllm-eks-teardown-guard"
    assert props["ServiceTimeout"] == "960"
    assert {k: props[k] for k in ("ClusterName", "ClusterEndpoint",
                                  "CertificateAuthorityData")} == {
        "ClusterName": default_env.config.cluster.name,
        "ClusterEndpoint": {"Fn::GetAtt": [cluster_id, "Endpoint"]},
        "CertificateAuthorityData": {"Fn::GetAtt": [cluster_id, "CertificateAuthorityData"]},
    }


def test_the_handler_asset_is_the_handler_modules_and_loads_as_lambda_loads_it(default_env):
    _, custom = guard_resource(default_env)
    function = resources(default_env)[custom["Properties"]["ServiceToken"]["Fn::GetAtt"][0]]
    asset = default_env.outdir / ("asset." + function["Properties"]["Code"]["S3Key"]
                                  .removesuffix(".zip"))
    # No __init__.py or __pycache__: the asset hash does not depend on a test run.
    # The guard's modules and the benchmark gate's (one asset for both functions).
    modules = ["benchmark_gate.py", "cleanup.py", "index.py", "kube.py"]
    assert sorted(p.name for p in asset.iterdir()) == modules
    for name in modules:
        assert (asset / name).read_text() == (teardown.HANDLER_DIR / name).read_text()
    # Lambda imports `index` as a top-level module, with the asset's root on sys.path.
    loaded = subprocess.run(
        [sys.executable, "-c", "import index, benchmark_gate; print(index.handler.__module__, "
         "index.cleanup.__name__, benchmark_gate.handler.__module__)"], cwd=asset,
        capture_output=True, text=True)
    assert loaded.stdout.split() == ["index", "cleanup", "benchmark_gate"], loaded.stderr


def test_the_access_entry_maps_the_role_to_a_group_without_access_policies(default_env):
    _, entry = find(default_env, "AWS::EKS::AccessEntry",
                    KubernetesGroups=[teardown.KUBERNETES_GROUP])
    props = entry["Properties"]
    assert props["Type"] == "STANDARD"
    assert props.get("AccessPolicies", []) == []
    assert "Username" not in props
    role_id = props["PrincipalArn"]["Fn::GetAtt"][0]
    _, custom = guard_resource(default_env)
    function = resources(default_env)[custom["Properties"]["ServiceToken"]["Fn::GetAtt"][0]]
    assert function["Properties"]["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}
    # Its IAM: Lambda's execution policies and reading its own stack's status, nothing else.
    statements = [s for r in resources(default_env).values() if r["Type"] == "AWS::IAM::Policy"
                  and {"Ref": role_id} in r["Properties"]["Roles"]
                  for s in r["Properties"]["PolicyDocument"]["Statement"]]
    assert statements == [{"Action": "cloudformation:DescribeStacks", "Effect": "Allow",
                           "Resource": {"Ref": "AWS::StackId"}}]


def rbac_manifest_id(env) -> str:
    (logical_id,) = [k for k, r in resources(env).items() if r["Type"] == KUBERNETES_RESOURCE
                     and any(o["kind"] == "ClusterRole"
                             and o["metadata"]["name"] == teardown.CLUSTER_ROLE
                             for o in parse_manifest(r["Properties"]["Manifest"]))]
    return logical_id


def test_the_cluster_role_allows_exactly_reading_and_deleting_what_the_guard_removes(
        default_env):
    objects = {o["kind"]: o for o in default_env.manifests()
               if o["metadata"]["name"] == teardown.CLUSTER_ROLE}
    assert set(objects) == {"ClusterRole", "ClusterRoleBinding"}
    verbs = ["get", "list", "watch", "delete"]
    assert objects["ClusterRole"]["rules"] == [
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": verbs},
        {"apiGroups": [""], "resources": ["services"], "verbs": verbs},
        {"apiGroups": ["karpenter.sh"], "resources": ["nodepools", "nodeclaims"],
         "verbs": verbs},
    ]
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": teardown.CLUSTER_ROLE}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": teardown.KUBERNETES_GROUP}]
