"""The front door (issue 16): WAF on an internet-facing ALB, the chat UI signed in at the
ALB, traces to X-Ray, and the options that configure them (bad ones refused)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from vllm_eks import versions
from vllm_eks.config import ConfigError, EnvironmentConfig
from vllm_eks.constructs.waf import PROMPT_BODY_RULES
from vllm_eks.k8s_charts.chat_ui import CHAT_NAMESPACE, CHAT_POD_LABELS, CHAT_SECRETS
from vllm_eks.k8s_charts.model_pods import app_name
from vllm_eks.k8s_charts.router import ROUTER_NAME
from vllm_eks.k8s_charts.tracing import COLLECTOR_POD_LABELS, OTLP_GRPC_PORT
from vllm_eks.vllm_cli import check_server_args

from .conftest import CERTIFICATE_ARN as CERTIFICATE
from .conftest import FRONT_DOOR_CONTEXT
from .helm_values import CHART_FIXTURES, chart_defaults, merge
from .support import render_intrinsics, synth_environment

PROD, CLUSTER = "VllmProdStack", "VllmClusterStack"
HELM = "Custom::AWSCDK-EKS-HelmChart"
HOST = FRONT_DOOR_CONTEXT["endpoint_hostname"]


def helm_release(env, stack: str, chart: str) -> dict:
    (found,) = [r["Properties"] for r in env.resources(stack, HELM).values()
                if r["Properties"]["Chart"] == chart]
    return found


def values_of(release: dict) -> dict:
    return json.loads(render_intrinsics(release["Values"]))


def router_ingress(env) -> dict:
    (found,) = [o for o in env.manifests() if o["kind"] == "Ingress"
                and o["metadata"]["name"] == ROUTER_NAME]
    return found


# -- WAF ---------------------------------------------------------------------------------------

def test_an_internet_facing_alb_gets_the_web_acl(front_door_env):
    (acl_id, acl), = front_door_env.resources(PROD, "AWS::WAFv2::WebACL").items()
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"]: r for r in props["Rules"]}
    assert [r["Name"] for r in sorted(props["Rules"], key=lambda r: r["Priority"])] == [
        "AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
        "RateLimitPerIp"]
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert common["VendorName"] == "AWS"
    # Prompts are bodies: the body rules count, every other rule of the set blocks.
    assert {o["Name"]: o["ActionToUse"] for o in common["RuleActionOverrides"]} == {
        name: {"Count": {}} for name in PROMPT_BODY_RULES}
    rate = rules["RateLimitPerIp"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP", "Limit": 600, "EvaluationWindowSec": 300}
    # Logged, with the API key's header redacted, to a log group WAF accepts.
    (logging,) = front_door_env.resources(PROD, "AWS::WAFv2::LoggingConfiguration").values()
    assert logging["Properties"]["ResourceArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert logging["Properties"]["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}]
    destination = render_intrinsics(logging["Properties"]["LogDestinationConfigs"][0])
    assert destination.endswith(":log-group:aws-waf-logs-vllm-eks") and ":*" not in destination
    (group,) = [r for r in front_door_env.resources(PROD, "AWS::Logs::LogGroup").values()
                if r["Properties"].get("LogGroupName") == "aws-waf-logs-vllm-eks"]
    assert group["Properties"]["RetentionInDays"] == 90
    annotations = router_ingress(front_door_env)["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/wafv2-acl-arn"] == f"${{GetAtt:{acl_id}.Arn}}"


def test_internal_endpoints_and_waf_false_get_no_web_acl(default_env, public_efs_env):
    assert not default_env.resources(PROD, "AWS::WAFv2::WebACL")
    assert "alb.ingress.kubernetes.io/wafv2-acl-arn" not in router_ingress(
        default_env)["metadata"]["annotations"]
    assert public_efs_env.resources(PROD, "AWS::WAFv2::WebACL")  # internet-facing: on
    off = EnvironmentConfig.from_context({**FRONT_DOOR_CONTEXT, "waf": "false"}.get)
    assert not off.endpoint.web_acl


# -- the chat UI -------------------------------------------------------------------------------

def test_the_ui_release_is_pinned_without_ollama_pipelines_or_redis(front_door_env):
    release = helm_release(front_door_env, PROD, "open-webui")
    assert release["Version"] == versions.OPEN_WEBUI_CHART_VERSION
    assert release["Namespace"] == CHAT_NAMESPACE
    values = values_of(release)
    assert values["image"]["tag"] == versions.OPEN_WEBUI_IMAGE_TAG
    assert values["ollama"] == {"enabled": False} and values["pipelines"] == {"enabled": False}
    assert values["websocket"]["redis"] == {"enabled": False}
    # Every key we set exists in the chart's own values (a misspelt key does nothing).
    defaults = chart_defaults(f"open-webui-{versions.OPEN_WEBUI_CHART_VERSION}-values.yaml")

    def unknown(ours: dict, theirs: dict, path: str = "") -> list[str]:
        found = []
        for key, value in ours.items():
            if key not in theirs:
                found.append(path + key)
            elif isinstance(value, dict) and isinstance(theirs[key], dict) and theirs[key]:
                found += unknown(value, theirs[key], f"{path}{key}.")
        return found

    assert unknown(values, defaults) == []


def test_the_ui_gets_the_key_as_a_file_and_trusts_only_the_alb(front_door_env):
    values = values_of(helm_release(front_door_env, PROD, "open-webui"))
    merged = merge(chart_defaults(
        f"open-webui-{versions.OPEN_WEBUI_CHART_VERSION}-values.yaml"), values)
    # The chart's default key would render as a plain-text env value: it is empty.
    assert merged["openaiApiKey"] == "" and not merged["openaiApiKeyExistingSecret"]
    assert merged["openaiBaseApiUrl"] == f"http://{ROUTER_NAME}.inference.svc:8001/v1"
    (volume,) = merged["volumes"]
    assert volume["csi"]["volumeAttributes"] == {"secretProviderClass": CHAT_SECRETS}
    assert "api-key" in merged["args"][0] and "OPENAI_API_KEY" in merged["args"][0]
    env = {e["name"]: e["value"] for e in merged["extraEnvVars"]}
    assert env["WEBUI_AUTH_TRUSTED_EMAIL_HEADER"] == "x-amzn-oidc-identity"
    assert env["ENABLE_SIGNUP"] == "False" and env["ENABLE_LOGIN_FORM"] == "False"
    assert env["ENABLE_PERSISTENT_CONFIG"] == "False"
    assert merged["persistence"]["enabled"] and merged["persistence"]["storageClass"] == (
        "gp3-encrypted")
    # Only the ALB's subnets reach the pod; the router admits it.
    (policy,) = [o for o in front_door_env.manifests() if o["kind"] == "NetworkPolicy"
                 and o["metadata"].get("namespace") == CHAT_NAMESPACE]
    assert policy["spec"]["podSelector"]["matchLabels"] == CHAT_POD_LABELS
    (ingress_rule,) = policy["spec"]["ingress"]
    router_policy = [o for o in front_door_env.manifests() if o["kind"] == "NetworkPolicy"
                     and o["metadata"]["name"] == ROUTER_NAME][0]
    lb_cidrs = {p["ipBlock"]["cidr"] for p in router_policy["spec"]["ingress"][0]["from"]}
    assert {p["ipBlock"]["cidr"] for p in ingress_rule["from"]} == lb_cidrs
    assert any(peer.get("namespaceSelector", {}).get("matchLabels") == {
        "kubernetes.io/metadata.name": CHAT_NAMESPACE}
        for rule in router_policy["spec"]["ingress"] for peer in rule["from"])
    assert not [o for o in front_door_env.manifests() if o["kind"] == "Secret"]


def test_the_ui_signs_in_at_the_alb_with_a_pool_without_self_sign_up(front_door_env):
    values = values_of(helm_release(front_door_env, PROD, "open-webui"))
    annotations = values["ingress"]["annotations"]
    assert values["ingress"]["host"] == HOST and values["ingress"]["class"] == "alb"
    assert annotations["alb.ingress.kubernetes.io/auth-type"] == "cognito"
    assert annotations["alb.ingress.kubernetes.io/auth-on-unauthenticated-request"] == (
        "authenticate")
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == CERTIFICATE
    idp = json.loads(annotations["alb.ingress.kubernetes.io/auth-idp-cognito"])
    assert set(idp) == {"userPoolARN", "userPoolClientID", "userPoolDomain"}
    # One ALB: the API's Ingress is in the same group, its exact paths first.
    router = router_ingress(front_door_env)["metadata"]["annotations"]
    group = "alb.ingress.kubernetes.io/group.name"
    assert router[group] == annotations[group]
    order = "alb.ingress.kubernetes.io/group.order"
    assert int(router[order]) < int(annotations[order])
    (pool,) = front_door_env.resources(PROD, "AWS::Cognito::UserPool").values()
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["Properties"]["MfaConfiguration"] == "OPTIONAL"
    assert pool["DeletionPolicy"] == "Retain"
    (client,) = front_door_env.resources(PROD, "AWS::Cognito::UserPoolClient").values()
    assert client["Properties"]["GenerateSecret"] is True
    assert client["Properties"]["CallbackURLs"] == [f"https://{HOST}/oauth2/idpresponse"]


def test_an_oidc_provider_is_federated_with_its_secret_read_by_cloudformation(tmp_path):
    secret = "arn:aws:secretsmanager:us-east-1:111111111111:secret:chat-oidc-AbCdEf"
    env = synth_environment({**FRONT_DOOR_CONTEXT, "cognito_mfa": "off",
                             "oidc_issuer": "https://login.example.com/realms/main",
                             "oidc_client_id": "vllm-chat", "oidc_client_secret_arn": secret},
                            tmp_path)
    (provider,) = env.resources(PROD, "AWS::Cognito::UserPoolIdentityProvider").values()
    details = provider["Properties"]["ProviderDetails"]
    assert provider["Properties"]["ProviderType"] == "OIDC"
    assert details["oidc_issuer"] == "https://login.example.com/realms/main"
    assert details["client_id"] == "vllm-chat"
    assert details["client_secret"] == f"{{{{resolve:secretsmanager:{secret}:SecretString:::}}}}"
    (client,) = env.resources(PROD, "AWS::Cognito::UserPoolClient").values()
    (provider_id,) = env.resources(PROD, "AWS::Cognito::UserPoolIdentityProvider")
    assert client["Properties"]["SupportedIdentityProviders"] == [{"Ref": provider_id}]


# -- traces ------------------------------------------------------------------------------------

def test_vllm_sends_sampled_traces_to_the_collector(front_door_env):
    key = front_door_env.config.models[0].key
    (deployment,) = [o for o in front_door_env.manifests() if o["kind"] == "Deployment"
                     and o["metadata"]["name"] == app_name(key)]
    spec = deployment["spec"]["template"]["spec"]
    (vllm,) = [c for c in spec["containers"] if c["name"] == "vllm"]
    args = vllm["args"]
    endpoint = args[args.index("--otlp-traces-endpoint") + 1]
    assert endpoint == f"http://otel-collector.monitoring.svc:{OTLP_GRPC_PORT}"
    check_server_args(args[1:], owner="test")  # the flag is the pinned vLLM's
    env = {e["name"]: e.get("value") for e in vllm["env"]}
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
    (policy,) = [o for o in front_door_env.manifests() if o["kind"] == "NetworkPolicy"
                 and o["metadata"]["name"] == app_name(key)]
    (to_collector,) = [rule for rule in policy["spec"]["egress"]
                       if rule["ports"][0]["port"] == OTLP_GRPC_PORT]
    assert to_collector["to"][0]["podSelector"]["matchLabels"] == COLLECTOR_POD_LABELS


def test_the_collector_values_are_valid_for_its_chart(front_door_env):
    release = helm_release(front_door_env, CLUSTER, "opentelemetry-collector")
    assert release["Version"] == versions.OTEL_COLLECTOR_CHART_VERSION
    name = f"opentelemetry-collector-{versions.OTEL_COLLECTOR_CHART_VERSION}"
    merged = merge(chart_defaults(f"{name}-values.yaml"), values_of(release))
    schema = json.loads((CHART_FIXTURES / f"{name}-values.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(merged)  # "schema#": the latest draft
    assert merged["image"] == {**merged["image"], "repository": versions.OTEL_COLLECTOR_IMAGE,
                               "tag": versions.OTEL_COLLECTOR_IMAGE_TAG}
    config = merged["alternateConfig"]  # used as it is: the chart merges nothing into it
    assert "health_check" in config["service"]["extensions"]  # the chart's probes
    assert set(config["service"]["pipelines"]) == {"traces"}
    traces = config["service"]["pipelines"]["traces"]
    assert traces["exporters"] == ["awsxray"]
    for kind in ("receivers", "processors", "exporters"):  # every part is defined
        assert set(traces[kind]) <= set(config[kind]), kind
    assert set(config["receivers"]) == {"otlp"}
    assert config["exporters"]["awsxray"]["region"] == front_door_env.config.region


def test_default_has_no_collector_and_no_tracing_flag(default_env):
    assert not [r for r in default_env.resources(CLUSTER, HELM).values()
                if r["Properties"]["Chart"] == "opentelemetry-collector"]
    assert "--otlp-traces-endpoint" not in json.dumps(default_env.manifests())


# -- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("context", "message"), [
    ({"chat_ui": "true"}, r"-c chat_ui=true needs HTTPS on a name of yours"),
    ({"chat_ui": "true", "certificate_arn": CERTIFICATE},
     r"pass -c certificate_arn=.* and -c endpoint_hostname="),
    ({**FRONT_DOOR_CONTEXT, "cognito_mfa": "off", "oidc_issuer": "https://id.example.com"},
     r"-c oidc_issuer needs -c oidc_client_id="),
    ({**FRONT_DOOR_CONTEXT, "oidc_client_id": "x"}, r"-c oidc_client_id needs -c oidc_issuer="),
    ({**FRONT_DOOR_CONTEXT, "cognito_mfa": "off", "oidc_issuer": "http://id.example.com",
      "oidc_client_id": "x"}, r"is not an https:// issuer URL"),
    ({"oidc_issuer": "https://id.example.com"}, r"-c oidc_issuer configures the chat UI's "
                                                r"sign-in; add -c chat_ui=true"),
    ({"cognito_mfa": "sometimes"}, r"-c cognito_mfa='sometimes' is not an MFA setting; pass "
                                   r"-c cognito_mfa=<one of: off, optional, required>"),
    ({"waf_rate_limit": "9"}, r"-c waf_rate_limit=9 is outside what AWS WAF accepts \(10 to "),
    ({"waf_rate_limit": "-5"}, r"-c waf_rate_limit='-5' is not a whole number"),
    ({"endpoint_type": "elb"}, r"-c endpoint_type='elb' is not a load balancer type; pass "
                               r"-c endpoint_type=<one of: alb, nlb>"),
    ({"endpoint_type": "nlb", "certificate_arn": CERTIFICATE},
     r"-c endpoint_type=nlb is refused for now: an NLB cannot filter paths"),
    ({"tracing": "true", "tracing_sampling_ratio": "1.5"}, r"tracing_sampling_ratio=1.5 is a "
                                                           r"share of requests"),
    ({"tracing_sampling_ratio": "0.5"}, r"-c tracing_sampling_ratio needs -c tracing=true"),
])
def test_bad_front_door_options_fail_with_the_fix(context, message):
    with pytest.raises(ConfigError, match=message):
        EnvironmentConfig.from_context(context.get)
