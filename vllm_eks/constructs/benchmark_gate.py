"""BenchmarkGate: the function a pipeline stage's SLO gate invokes after its smoke test."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct, IDependable

from ..config import BenchmarkGateConfig
from ..k8s_charts.benchmark import benchmark_cronjob, benchmark_results_prefix
from ..nag import acknowledge, acknowledge_vpc_lambda_role, acknowledge_wildcards
from .cluster_function import cluster_function, kubernetes_access

# The Kubernetes group the gate's role is mapped to, and its Role (and binding) in the
# models' namespace: read the benchmark CronJob, create and read Jobs. Nothing else.
KUBERNETES_GROUP = "vllm-eks-benchmark-gate"
ROLE_NAME = "vllm-eks-benchmark-gate"
RBAC_RULES = [
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]},
]


def benchmark_gate_function_name(environment_name: str) -> str:
    """A fixed name, so the pipeline account can be allowed to invoke exactly it."""
    return f"{environment_name}-benchmark-gate"[:64]


@dataclass(frozen=True, kw_only=True)
class BenchmarkGateProps:
    gate: BenchmarkGateConfig  # the model, workload and SLO (pipeline.json's "benchmark")
    cluster: eks.ICluster  # its endpoint and CA go to the handler; access goes here
    cluster_name: str  # plain text: the EKS token names it
    vpc: ec2.IVpc  # the handler runs in its private subnets with the cluster security group
    bucket: s3.IBucket  # where the benchmark Job saves its result
    namespace: str  # the models' namespace (the CronJob's and the Jobs')
    invoker_account: str | None  # the pipeline's account; None: only this account
    after: tuple[IDependable, ...] = ()  # the namespace: the RBAC objects live in it


class BenchmarkGate(Construct):
    """A Lambda function (cluster_handlers/benchmark_gate.py) that starts one run of a
    model's benchmark CronJob and reports whether it met the TTFT SLO. Its role reaches
    Kubernetes through an access entry with no access policy, mapped to a Role that may
    only read the CronJob and create and read Jobs in the models' namespace, and may read
    only the results of that model and workload. No hook is meant to be overridden."""

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: BenchmarkGateProps) -> None:
        super().__init__(scope, construct_id)
        gate, cluster = props.gate, props.cluster
        results = f"{benchmark_results_prefix(gate.model_key)}{gate.workload.value}/"
        function_name = benchmark_gate_function_name(props.cluster_name)
        self.function = cluster_function(
            self, function_name=function_name, handler="benchmark_gate.handler",
            cluster=cluster, vpc=props.vpc,
            timeout=cdk.Duration.minutes(1),  # each invocation: a few API calls
            description="vllm-eks benchmark gate: runs a model's benchmark and checks its "
            "p95 TTFT against the SLO",
            environment={
                "CLUSTER_NAME": props.cluster_name,
                "CLUSTER_ENDPOINT": cluster.cluster_endpoint,
                "CERTIFICATE_AUTHORITY_DATA": cluster.cluster_certificate_authority_data,
                "NAMESPACE": props.namespace,
                "CRONJOB": benchmark_cronjob(gate.model_key, gate.workload),
                "BUCKET": props.bucket.bucket_name,
                "RESULT_PREFIX": results,
                "TTFT_SLO_MS": f"{gate.ttft_slo_ms:g}",
            })
        role = self.function.role
        # Listing (under the results prefix only) makes a missing result NoSuchKey rather
        # than AccessDenied.
        statements = [
            iam.PolicyStatement(
                sid="ListResults", actions=["s3:ListBucket"],
                resources=[props.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{results}*"]}}),
            iam.PolicyStatement(sid="ReadResults", actions=["s3:GetObject"],
                                resources=[props.bucket.arn_for_objects(f"{results}*")]),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        acknowledge_wildcards(role, statements, "The results of one model and workload only: "
                              "each run names its file (the gate names the runs it starts).")
        self.access_entry, self.rbac = kubernetes_access(
            self, cluster=cluster, role=role, group=KUBERNETES_GROUP,
            rbac=self.rbac_manifest(props.namespace))
        if props.after:
            self.rbac.node.add_dependency(*props.after)
        if props.invoker_account:
            self.function.add_permission(
                "PipelineInvoke", principal=iam.AccountPrincipal(props.invoker_account),
                action="lambda:InvokeFunction")
        self._acknowledge_nag_findings(results)

    @staticmethod
    def rbac_manifest(namespace: str) -> list[dict]:
        labels = {"app.kubernetes.io/name": "benchmark-gate",
                  "app.kubernetes.io/part-of": "vllm-eks"}
        meta = {"name": ROLE_NAME, "namespace": namespace, "labels": labels}
        return [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": meta, "rules": RBAC_RULES},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": meta,
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                         "name": ROLE_NAME},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                           "name": KUBERNETES_GROUP}]},
        ]

    def _acknowledge_nag_findings(self, results: str) -> None:
        acknowledge_vpc_lambda_role(
            self.function, f"beyond them the role may only read the results under {results}.")
        acknowledge(self.function, "AwsSolutions::AwsSolutions-L1",
                    "Pinned to python3.13 like the teardown guard, whose asset it shares; "
                    "the handler uses only the standard library and the runtime's boto3.")
