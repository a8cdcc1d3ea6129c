"""`python -m vllm_eks preflight`: every check against real boto3 clients whose calls
botocore's Stubber answers (dummy credentials; Stubber answers before anything is sent, so
no test touches the network)."""

from __future__ import annotations

import datetime
import io
import json
import re
from dataclasses import dataclass, field

import boto3
import pytest
from botocore.stub import Stubber

from vllm_eks import versions
from vllm_eks.cli import main
from vllm_eks.config import EnvironmentConfig
from vllm_eks.install_order import LAMBDA_CONCURRENCY_NEEDED
from vllm_eks.preflight.aws import Clients
from vllm_eks.preflight.capacity import max_vcpus
from vllm_eks.preflight.checks import (
    BOOTSTRAP_PARAMETER,
    MIN_BOOTSTRAP_VERSION,
    bottlerocket_ami_parameter,
)
from vllm_eks.preflight.inputs import covers
from vllm_eks.preflight.options import translate
from vllm_eks.preflight.runner import run_preflight
from vllm_eks.models import GPU_INSTANCES

from .support import REPO

REGION = "us-east-1"
ACCOUNT = "123456789012"
CALLER = f"arn:aws:iam::{ACCOUNT}:user/deployer"
CERTIFICATE_ARN = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/platform-admins"
SERVICES = ("sts", "ssm", "service-quotas", "ec2", "eks", "lambda", "acm", "iam")
ZONES = (f"{REGION}a", f"{REGION}b", f"{REGION}c")
AMI_PARAMETER = bottlerocket_ami_parameter(versions.BOTTLEROCKET_VERSION)
ALWAYS_ADDONS = {k: v for k, v in versions.EKS_ADDON_VERSIONS.items()
                 if k != "amazon-cloudwatch-observability"}
G_ON_DEMAND, P_ON_DEMAND = "L-DB2E81BA", "L-417A185B"
G_SPOT, P_SPOT, STANDARD = "L-3819A6DF", "L-7212CCBC", "L-1216C47A"


@pytest.fixture(scope="module")
def aws_clients():
    """Real clients, created once (loading a service model costs); dummy credentials."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=REGION)
    return {service: session.client(service) for service in SERVICES}


@dataclass
class Account:
    """What the stubbed account answers. Calls are queued per client in the order the
    checks make them; any call not queued, or queued and not made, fails the test."""

    bootstrap: str | None = "30"
    # (quota code, vCPUs or an error code), in the order the GPU rows ask.
    gpu_quotas: list[tuple[str, float | str]] = field(
        default_factory=lambda: [(G_ON_DEMAND, 1000.0)])
    standard_quota: float | str = 1000.0
    offerings: dict[str, tuple[str, ...]] | None = None  # None: every pool type in ZONES
    ami: bool = True
    newest_bottlerocket: str = "1.70.0"
    addons: dict[str, list[str]] = field(default_factory=dict)  # overrides per add-on
    certificate: dict | None = None
    role_exists: bool = True
    addon_error: str | None = None
    # GetAccountSettings' AccountLimit, or an error code.
    lambda_limit: dict | str = field(default_factory=lambda: {
        "ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 1000})

    def run(self, aws_clients, **context: str) -> tuple[int, str]:
        config = EnvironmentConfig.from_context({"region": REGION, **context}.get)
        stubs = {service: Stubber(client) for service, client in aws_clients.items()}
        self._queue(stubs, config)
        out = io.StringIO()
        for stub in stubs.values():
            stub.activate()
        try:
            code = run_preflight(config, Clients(REGION, clients=aws_clients), out=out,
                                 err=out)
            for stub in stubs.values():
                stub.assert_no_pending_responses()
        finally:
            for stub in stubs.values():
                stub.deactivate()
        return code, out.getvalue()

    def _queue(self, stubs: dict[str, Stubber], config: EnvironmentConfig) -> None:
        stubs["sts"].add_response("get_caller_identity", {
            "UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": CALLER})
        ssm = stubs["ssm"]
        if self.bootstrap is None:
            ssm.add_client_error("get_parameter", "ParameterNotFound",
                                 expected_params={"Name": BOOTSTRAP_PARAMETER})
        else:
            ssm.add_response("get_parameter", _parameter(BOOTSTRAP_PARAMETER, self.bootstrap),
                             {"Name": BOOTSTRAP_PARAMETER})
        quotas = stubs["service-quotas"]
        for code, value in self.gpu_quotas:
            _quota(quotas, code, value)
        ec2 = stubs["ec2"]
        ec2.add_response("describe_instance_types", {"InstanceTypes": [
            {"InstanceType": "m7i.xlarge", "VCpuInfo": {"DefaultVCpus": 4}}]},
            {"InstanceTypes": ["m7i.xlarge"]})
        _quota(quotas, STANDARD, self.standard_quota)
        for model in config.models:  # one offerings call per model
            pool = list(config.instance_types(model))
            offerings = self.offerings or {t: ZONES for t in pool}
            ec2.add_response("describe_instance_type_offerings", {"InstanceTypeOfferings": [
                {"InstanceType": t, "LocationType": "availability-zone", "Location": z}
                for t, zones in offerings.items() for z in zones]},
                {"LocationType": "availability-zone",
                 "Filters": [{"Name": "instance-type", "Values": pool}]})
        if self.ami:
            ssm.add_response("get_parameter", _parameter(AMI_PARAMETER, "ami-0123456789abcdef0"),
                             {"Name": AMI_PARAMETER})
        else:
            ssm.add_client_error("get_parameter", "ParameterNotFound",
                                 expected_params={"Name": AMI_PARAMETER})
            latest = AMI_PARAMETER.rsplit("/", 2)[0] + "/latest/image_version"
            ssm.add_response("get_parameter", _parameter(latest, self.newest_bottlerocket),
                             {"Name": latest})
        for name, version in ALWAYS_ADDONS.items():
            params = {"kubernetesVersion": versions.KUBERNETES_MINOR, "addonName": name}
            if self.addon_error:
                stubs["eks"].add_client_error("describe_addon_versions", self.addon_error,
                                              "Rate exceeded", 400, expected_params=params)
                break
            published = self.addons.get(name, [version])
            stubs["eks"].add_response("describe_addon_versions", {"addons": [{
                "addonName": name,
                "addonVersions": [{"addonVersion": v} for v in published]}]}, params)
        if isinstance(self.lambda_limit, str):
            stubs["lambda"].add_client_error("get_account_settings", self.lambda_limit,
                                             "Rate exceeded", 400, expected_params={})
        else:
            stubs["lambda"].add_response("get_account_settings",
                                         {"AccountLimit": self.lambda_limit}, {})
        if config.endpoint.certificate_arn:
            stubs["acm"].add_response("describe_certificate", {"Certificate": {
                "CertificateArn": CERTIFICATE_ARN, "DomainName": "llm.example.com",
                "SubjectAlternativeNames": ["llm.example.com"], "Status": "ISSUED",
                **(self.certificate or {})}}, {"CertificateArn": CERTIFICATE_ARN})
        if config.cluster.admin_role_arn:
            name = ROLE_ARN.rsplit("/", 1)[1]
            if self.role_exists:
                stubs["iam"].add_response("get_role", {"Role": {
                    "Path": "/", "RoleName": name, "RoleId": "AROAEXAMPLEEXAMPLE1",
                    "Arn": ROLE_ARN, "CreateDate": datetime.datetime(2026, 1, 1)}},
                    {"RoleName": name})
            else:
                stubs["iam"].add_client_error("get_role", "NoSuchEntity", http_status_code=404,
                                              expected_params={"RoleName": name})


def _parameter(name: str, value: str) -> dict:
    return {"Parameter": {"Name": name, "Type": "String", "Value": value, "Version": 1}}


def _quota(stub: Stubber, code: str, value: float | str) -> None:
    params = {"ServiceCode": "ec2", "QuotaCode": code}
    if isinstance(value, str):
        stub.add_client_error("get_service_quota", value, "User is not authorized", 400,
                              expected_params=params)
    else:
        stub.add_response("get_service_quota", {"Quota": {
            "ServiceCode": "ec2", "QuotaCode": code, "QuotaName": code, "Value": value}}, params)


def rows(output: str, status: str) -> list[str]:
    """The report's rows of one status, each with its continuation lines joined."""
    found, current = [], None
    for line in output.splitlines():
        if re.match(r"(ok|warning|problem|could not check) ", line):
            current = line if line.startswith(status + " ") else None
            if current is not None:
                found.append(current)
        elif current is not None and line.startswith(" "):
            found[-1] += " " + line.strip()
    return [" ".join(row.split()) for row in found]


FULL = {"certificate_arn": CERTIFICATE_ARN, "endpoint_hostname": "llm.example.com",
        "admin_role_arn": ROLE_ARN}


def test_an_account_ready_to_deploy(aws_clients):
    code, out = Account().run(aws_clients, **FULL)
    assert code == 0, out
    assert not rows(out, "problem") and not rows(out, "warning") and not rows(out, "could not")
    assert len(rows(out, "ok")) == 10  # credentials, bootstrap, G quota, standard quota,
    # offerings, AMI, add-ons, Lambda concurrency, certificate, role
    assert out.splitlines()[0].startswith(
        f"vllm-eks preflight: deepseek-r1-distill-llama-8b on g6e.xlarge (on-demand), "
        f"account {ACCOUNT}, region {REGION}")
    assert "ami-0123456789abcdef0" in out and CALLER in out
    assert out.rstrip().endswith("10 ok: ready to deploy.")
    (lambda_row,) = [row for row in rows(out, "ok") if "Lambda concurrency" in row]
    assert "1000 unreserved concurrent executions (quota 1000)" in lambda_row


def test_zero_p_quota_names_the_quota_and_the_vcpus_needed(aws_clients):
    # 8x H200: one p5en.48xlarge is 192 vCPUs; gpu_limit 16 allows two (one replica
    # and the surge replica of a rollout).
    code, out = Account(gpu_quotas=[(P_ON_DEMAND, 0.0)]).run(
        aws_clients, model="deepseek-r1", gpu_limit="16", max_replicas="1")
    assert code == 1
    (problem,) = rows(out, "problem")
    assert "Running On-Demand P instances (on-demand) is 0 vCPUs" in problem
    assert "need 192 (one p5en.48xlarge) to 384" in problem
    assert ("request a quota increase for Running On-Demand P instances (L-417A185B) to at "
            "least 384 vCPUs") in problem
    assert "--quota-code L-417A185B --desired-value 384" in problem
    assert "fix the problems before `cdk deploy`" in out


def test_a_quota_below_the_gpu_limit_warns(aws_clients):
    code, out = Account(gpu_quotas=[(P_ON_DEMAND, 192.0)]).run(
        aws_clients, model="deepseek-r1", gpu_limit="16", max_replicas="1")
    assert code == 0
    (warning,) = rows(out, "warning")
    assert "Karpenter stops at 192 vCPUs" in warning and "to at least 384 vCPUs" in warning


def test_fallback_families_have_their_own_quota_row(aws_clients):
    # The 70B distill plans a p4d.24xlarge (TP 8); g6e.48xlarge (8 x L40S) is among its
    # fallbacks, on the G and VT quota.
    code, out = Account(gpu_quotas=[(P_ON_DEMAND, 1000.0), (G_ON_DEMAND, 0.0)]).run(
        aws_clients, model="deepseek-r1-distill-llama-70b")
    assert code == 0  # the planned type can launch
    (warning,) = rows(out, "warning")
    assert "L-DB2E81BA" in warning and "g6e.48xlarge" in warning
    assert "fallback types can never launch" in warning


def test_spot_without_spot_quota_falls_back_to_on_demand(aws_clients):
    account = Account(gpu_quotas=[(G_SPOT, 0.0), (G_ON_DEMAND, 64.0)])
    code, out = account.run(aws_clients, capacity="spot")
    assert code == 0
    (warning,) = rows(out, "warning")
    assert "All G and VT Spot Instance Requests (spot) is 0 vCPUs" in warning
    assert "falls back to on-demand" in warning


def test_planned_type_offered_in_only_some_zones(aws_clients):
    offered = {"g6e.xlarge": (f"{REGION}a", f"{REGION}b", f"{REGION}d", f"{REGION}f")}
    code, out = Account(offerings=offered).run(aws_clients)
    assert code == 0
    (warning,) = rows(out, "warning")
    assert f"g6e.xlarge is not offered in {REGION}c" in warning
    assert f"-c availability_zones={REGION}a,{REGION}b,{REGION}d" in warning


def test_planned_type_offered_in_none_of_the_zones(aws_clients):
    offered = {"g6e.xlarge": (f"{REGION}d", f"{REGION}e"), "g6e.2xlarge": ZONES}
    code, out = Account(offerings=offered).run(aws_clients)
    assert code == 1
    (problem,) = rows(out, "problem")
    assert f"g6e.xlarge is offered in none of {', '.join(ZONES)}" in problem
    assert "fallbacks offered there: g6e.2xlarge" in problem
    assert f"only 2 AZ(s) of {REGION} offer g6e.xlarge ({REGION}d, {REGION}e)" in problem


def test_missing_bootstrap(aws_clients):
    code, out = Account(bootstrap=None).run(aws_clients)
    assert code == 1
    (problem,) = rows(out, "problem")
    assert f"aws://{ACCOUNT}/{REGION} is not bootstrapped" in problem
    assert f"npx cdk bootstrap aws://{ACCOUNT}/{REGION}" in problem


def test_old_bootstrap(aws_clients):
    code, out = Account(bootstrap="5").run(aws_clients)
    assert code == 1
    assert "bootstrap version 5; the templates require at least 6" in rows(out, "problem")[0]


def test_bootstrap_minimum_is_what_the_templates_check():
    snapshot = (REPO / "tests/__snapshots__/test_snapshots"
                / "test_stack_snapshot[VllmNetworkStack].json")
    rule = json.loads(snapshot.read_text())["Rules"]["CheckBootstrapVersion"]
    required = re.search(r"version (\d+) required", rule["Assertions"][0]["AssertDescription"])
    assert int(required[1]) == MIN_BOOTSTRAP_VERSION


def test_the_ami_parameter_path_has_no_v():
    assert bottlerocket_ami_parameter("v1.68.1") == (
        f"/aws/service/bottlerocket/aws-k8s-{versions.KUBERNETES_MINOR}-nvidia/x86_64/1.68.1/"
        "image_id")


def test_missing_ami(aws_clients):
    code, out = Account(ami=False).run(aws_clients)
    assert code == 1
    (problem,) = rows(out, "problem")
    assert f"Bottlerocket {versions.BOTTLEROCKET_VERSION} has no aws-k8s-" in problem
    assert AMI_PARAMETER in problem and "(newest published: 1.70.0)" in problem


def test_unpublished_addon_version(aws_clients):
    account = Account(addons={"coredns": ["v1.14.1-eksbuild.1", "v1.14.3-eksbuild.1"]})
    code, out = account.run(aws_clients)
    assert code == 1
    (problem,) = rows(out, "problem")
    assert (f"coredns {versions.EKS_ADDON_VERSIONS['coredns']} (newest for "
            f"{versions.KUBERNETES_MINOR}: v1.14.3-eksbuild.1)") in problem
    assert "vpc-cni" not in problem


def test_other_aws_errors_are_reported_on_their_row(aws_clients):
    code, out = Account(addon_error="ThrottlingException").run(aws_clients)
    assert code == 0
    (unchecked,) = rows(out, "could not check")
    assert "EKS add-ons eks:DescribeAddonVersions failed: ThrottlingException" in unchecked


def test_lambda_concurrency_exactly_at_the_need_is_ok(aws_clients):
    assert LAMBDA_CONCURRENCY_NEEDED == 10
    account = Account(lambda_limit={"ConcurrentExecutions": 10,
                                    "UnreservedConcurrentExecutions": 10})
    code, out = account.run(aws_clients)
    assert code == 0, out
    (row,) = [r for r in rows(out, "ok") if "Lambda concurrency" in r]
    assert f"10 unreserved concurrent executions (quota 10) in {REGION}" in row
    assert "the deploy needs 10" in row


def test_lambda_concurrency_without_an_unreserved_value_uses_the_quota(aws_clients):
    code, out = Account(lambda_limit={"ConcurrentExecutions": 1000}).run(aws_clients)
    assert code == 0, out
    (row,) = [r for r in rows(out, "ok") if "Lambda concurrency" in r]
    assert f"1000 concurrent executions in {REGION}" in row


def test_reserved_concurrency_leaving_too_little_is_a_problem(aws_clients):
    account = Account(lambda_limit={"ConcurrentExecutions": 1000,
                                    "UnreservedConcurrentExecutions": 8})
    code, out = account.run(aws_clients)
    assert code == 1
    (problem,) = rows(out, "problem")
    assert problem.startswith("problem Lambda concurrency the account has 8 unreserved "
                              f"concurrent executions (quota 1000) in {REGION}; the deploy "
                              "needs 10")
    assert "would be throttled and a Helm release would fail half-way" in problem
    # 992 stay reserved by other functions: the quota must hold them and the deploy's 10.
    assert ("request a quota increase for Concurrent executions (L-B99A9384) to at least "
            "1002") in problem
    assert "--service-code lambda --quota-code L-B99A9384 --desired-value 1002" in problem
    assert "free reserved concurrency" in problem


@pytest.mark.parametrize(("error", "message"), [
    ("AccessDeniedException", "lambda:GetAccountSettings was denied to these credentials"),
    ("ServiceException", "lambda:GetAccountSettings failed: ServiceException"),
])
def test_lambda_concurrency_that_cannot_be_read_is_listed_but_does_not_fail(
        aws_clients, error, message):
    code, out = Account(lambda_limit=error).run(aws_clients)
    assert code == 0
    (unchecked,) = rows(out, "could not check")
    assert unchecked.startswith("could not check Lambda concurrency")
    assert message in unchecked
    assert "some checks could not run" in out


@pytest.mark.parametrize(("certificate", "hostname", "message"), [
    ({"Status": "PENDING_VALIDATION"}, "llm.example.com",
     "is PENDING_VALIDATION, not ISSUED"),
    ({"DomainName": "*.example.org", "SubjectAlternativeNames": ["*.example.org"]},
     "llm.example.com", "covers *.example.org, not llm.example.com"),
    ({"DomainName": "*.example.com", "SubjectAlternativeNames": ["*.example.com"]},
     "a.llm.example.com", "covers *.example.com, not a.llm.example.com"),
])
def test_certificate_problems(aws_clients, certificate, hostname, message):
    code, out = Account(certificate=certificate).run(
        aws_clients, certificate_arn=CERTIFICATE_ARN, endpoint_hostname=hostname)
    assert code == 1
    (problem,) = rows(out, "problem")
    assert message in problem


def test_wildcard_certificates_cover_one_label():
    assert covers("*.example.com", "llm.example.com")
    assert covers("LLM.example.com", "llm.example.com.")
    assert not covers("*.example.com", "example.com")
    assert not covers("*.example.com", "a.llm.example.com")


def test_missing_admin_role(aws_clients):
    code, out = Account(role_exists=False).run(aws_clients, admin_role_arn=ROLE_ARN)
    assert code == 1
    (problem,) = rows(out, "problem")
    assert f"role platform-admins does not exist in account {ACCOUNT}" in problem


def test_denied_quota_lookup_is_listed_but_does_not_fail(aws_clients):
    account = Account(gpu_quotas=[(G_ON_DEMAND, "AccessDeniedException")],
                      standard_quota="AccessDeniedException")
    code, out = account.run(aws_clients)
    assert code == 0
    unchecked = rows(out, "could not check")
    assert len(unchecked) == 2
    assert all("servicequotas:GetServiceQuota was denied" in row for row in unchecked)
    assert "allow servicequotas:GetServiceQuota" in unchecked[0]
    assert "some checks could not run" in out


def test_credentials_of_another_account_than_configured(aws_clients):
    code, out = Account().run(aws_clients, account="210987654321")
    assert code == 1
    assert "but -c account is 210987654321" in rows(out, "problem")[0]


def test_no_credentials_exits_1_with_one_line(monkeypatch, tmp_path, capsys):
    import os

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code = main(["preflight"])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("vllm-eks preflight: no usable AWS credentials")
    assert "aws configure" in line and "AWS_PROFILE" in line and "--region" in line


def test_a_bad_option_gets_the_plan_message_naming_the_flag(capsys):
    assert main(["plan", "--model", "nope"]) == 1
    plan_error = capsys.readouterr().err
    assert main(["preflight", "--model", "nope"]) == 1
    captured = capsys.readouterr()
    assert captured.err == plan_error.replace("-c model=", "--model ")
    assert captured.err.startswith("vllm-eks: unknown model 'nope'; pass --model <one of: ")


def test_synth_validation_with_flag_names(capsys):
    assert main(["preflight", "--gpu-limit", "0"]) == 1
    assert capsys.readouterr().err == "vllm-eks: --gpu-limit 0 must be at least 1\n"
    assert main(["preflight", "-c", "gpu_limit=0"]) == 1  # given as -c: named as -c
    assert capsys.readouterr().err == "vllm-eks: -c gpu_limit=0 must be at least 1\n"
    assert main(["preflight", "-c", "modle=x"]) == 1
    assert "-c modle is not an option of vllm-eks" in capsys.readouterr().err


def test_translate_spells_only_keys_with_flags():
    assert translate("-c min_replicas=3 is above -c max_replicas=2; raise -c max_replicas "
                     "to at least 3") == (
        "-c min_replicas=3 is above --max-replicas 2; raise --max-replicas to at least 3")


def test_max_vcpus_within_the_gpu_limit():
    g6e = [GPU_INSTANCES[t] for t in ("g6e.xlarge", "g6e.8xlarge", "g6e.12xlarge")]
    assert max_vcpus(g6e[:1], 3) == 12  # three 1-GPU nodes of 4 vCPUs
    assert max_vcpus(g6e, 5) == 5 * 32  # five g6e.8xlarge beat one 4-GPU g6e.12xlarge + 1


def test_help_lists_the_checks(capsys):
    from vllm_eks.preflight import CHECKS

    with pytest.raises(SystemExit) as exit_info:
        main(["preflight", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert all(f"  {name} " in out for name, _ in CHECKS) and "--availability-zones" in out


def test_the_documented_policy_lists_every_action():
    from vllm_eks.preflight import IAM_ACTIONS

    policy = (REPO / "docs/preflight.md").read_text().split('"Action": [')[1].split("]")[0]
    assert re.findall(r'"([a-z0-9]+:\w+)"', policy) == list(IAM_ACTIONS)


def test_several_models_share_one_quota_row_per_class_and_each_gets_its_offerings(
        aws_clients):
    models = "deepseek-r1-distill-llama-8b,deepseek-r1-distill-qwen-1.5b"
    code, out = Account(gpu_quotas=[(G_ON_DEMAND, 4.0)]).run(aws_clients, models=models,
                                                              **FULL)
    assert out.splitlines()[0].startswith(
        "vllm-eks preflight: deepseek-r1-distill-llama-8b on g6e.xlarge (on-demand), "
        "deepseek-r1-distill-qwen-1.5b on g6.xlarge (on-demand), ")
    # Both models' nodes draw on the one G quota: one row, which counts both models'
    # min_replicas (a g6e.xlarge and a g6.xlarge, 4 vCPUs each): 4 vCPUs start only one.
    (quota,) = [row for row in rows(out, "problem") if "L-DB2E81BA" in row]
    assert "need 8 (min_replicas: 1 x g6e.xlarge + 1 x g6.xlarge)" in quota
    assert "some model would never start" in quota
    offerings = [row for row in rows(out, "ok") if "AZ offerings" in row]
    assert [row.split("AZ offerings ")[1].split()[0] for row in offerings] == models.split(",")
    assert code == 1
    code, out = Account(gpu_quotas=[(G_ON_DEMAND, 8.0)]).run(aws_clients, models=models,
                                                              **FULL)
    (quota,) = [row for row in rows(out, "warning") if "L-DB2E81BA" in row]
    assert "Karpenter stops at 8 vCPUs" in quota and code == 0


def test_an_efa_model_needs_its_type_in_the_first_zone(aws_clients):
    context = {"model": "deepseek-r1", "instance_type": "p5.48xlarge", "efa": "true", **FULL}
    offered = {"p5.48xlarge": ("us-east-1b", "us-east-1c", "us-east-1d")}
    code, out = Account(gpu_quotas=[(P_ON_DEMAND, 1000.0)], offerings=offered).run(
        aws_clients, **context)
    (row,) = [r for r in rows(out, "problem") if "AZ offerings" in r]
    assert "not offered in us-east-1a, the one zone of the EFA node pool" in row
    assert "-c availability_zones=us-east-1b," in row and code == 1
