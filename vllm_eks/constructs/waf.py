"""EndpointWaf: the AWS WAF web ACL of an internet-facing ALB (the API and the chat UI)."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

# AWS managed rule groups (vendor AWS). The common rule set's body rules look for
# cross-site scripting, file paths, URLs and sizes in the request body; an LLM request's
# body is a prompt, which holds code, paths, links and often more than the 8 KB the size
# rule allows, so those rules count instead of block (they still log and show in metrics).
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS_RULE_SET = "AWSManagedRulesKnownBadInputsRuleSet"
PROMPT_BODY_RULES = ("SizeRestrictions_BODY", "CrossSiteScripting_BODY", "GenericLFI_BODY",
                     "GenericRFI_BODY", "EC2MetaDataSSRF_BODY")
# WAF sends logs only to log groups named so.
LOG_GROUP_PREFIX = "aws-waf-logs-"
RATE_LIMIT_WINDOW_SECONDS = 300


def waf_log_group_name(environment_name: str) -> str:
    return f"{LOG_GROUP_PREFIX}{environment_name}"


@dataclass(frozen=True, kw_only=True)
class EndpointWafProps:
    environment_name: str  # names the web ACL, its metrics and its log group
    rate_limit: int  # requests per client IP per 5 minutes (-c waf_rate_limit)
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS


class EndpointWaf(Construct):
    """A REGIONAL web ACL: AWS's common and known-bad-inputs rule groups (the common set's
    body rules counting, not blocking: prompts), then a per-IP rate limit, everything
    else allowed; its requests logged to CloudWatch Logs with a retention. The load
    balancer is associated by the AWS Load Balancer Controller from the Ingress annotation
    `alb.ingress.kubernetes.io/wafv2-acl-arn` (`web_acl_arn`).

    Hook a subclass may override: `rules()` (add rule groups or change their order)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: EndpointWafProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        name = f"{props.environment_name}-endpoint"
        self.web_acl = wafv2.CfnWebACL(
            self, "WebAcl", name=name, scope="REGIONAL",
            description=f"vllm-eks {props.environment_name} endpoint load balancer",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=self._visibility(name), rules=self.rules())
        self.web_acl_arn = self.web_acl.attr_arn
        log_group_name = waf_log_group_name(props.environment_name)
        self.log_group = logs.LogGroup(self, "Logs", log_group_name=log_group_name,
                                       retention=props.log_retention,
                                       removal_policy=cdk.RemovalPolicy.DESTROY)
        # The log group's ARN without CDK's `:*` suffix: the form WAF accepts.
        log_group_arn = cdk.Stack.of(self).format_arn(
            service="logs", resource="log-group", resource_name=log_group_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        logging = wafv2.CfnLoggingConfiguration(
            self, "Logging", resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[log_group_arn],
            # The API key travels in this header: never written to the logs.
            redacted_fields=[wafv2.CfnLoggingConfiguration.FieldToMatchProperty(
                single_header={"Name": "authorization"})])
        logging.node.add_dependency(self.log_group)

    def rules(self) -> list[wafv2.CfnWebACL.RuleProperty]:
        prefix = f"{self.props.environment_name}-endpoint"
        return [
            self._managed(COMMON_RULE_SET, 0, f"{prefix}-common", count=PROMPT_BODY_RULES),
            self._managed(KNOWN_BAD_INPUTS_RULE_SET, 1, f"{prefix}-known-bad-inputs"),
            wafv2.CfnWebACL.RuleProperty(
                name="RateLimitPerIp", priority=2,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP", limit=self.props.rate_limit,
                        evaluation_window_sec=RATE_LIMIT_WINDOW_SECONDS)),
                visibility_config=self._visibility(f"{prefix}-rate-limit")),
        ]

    def _managed(self, group: str, priority: int, metric: str,
                 count: tuple[str, ...] = ()) -> wafv2.CfnWebACL.RuleProperty:
        return wafv2.CfnWebACL.RuleProperty(
            name=group, priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS", name=group,
                    rule_action_overrides=[
                        wafv2.CfnWebACL.RuleActionOverrideProperty(
                            name=rule,
                            action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}))
                        for rule in count] or None)),
            visibility_config=self._visibility(metric))

    @staticmethod
    def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
        return wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True)
