"""ChatUi: Open WebUI at the endpoint's hostname, signed in at the ALB (-c chat_ui=true)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, IDependable

from .. import versions
from ..config import ChatUiConfig, CognitoMfa
from ..k8s_charts import render
from ..k8s_charts.chat_ui import (
    CHAT_NAMESPACE,
    CHAT_RELEASE,
    CHAT_SECRETS,
    CHAT_SECRETS_DIR,
    CHAT_SERVICE_ACCOUNT,
    ChatUiChart,
    ChatUiChartProps,
)
from ..k8s_charts.storage import GP3_STORAGE_CLASS
from ..labels import NODE_ROLE_LABEL
from ..nag import acknowledge
from .helm import pinned_chart
from .pod_identity import associate, pod_identity_role

# The ALB's callback on the endpoint's hostname (fixed by the load balancer).
ALB_CALLBACK_PATH = "/oauth2/idpresponse"
SESSION_SECONDS = 8 * 3600  # the ALB's sign-in cookie: a working day
DATA_GIB = 10  # users, chats, uploaded files (an encrypted gp3 volume)
# The API's rules (exact paths, no sign-in) come before the UI's catch-all `/`.
UI_GROUP_ORDER = 100

# What the container runs: the API key from the CSI file into OPENAI_API_KEY (Open WebUI
# has no *_FILE variant), and the session-signing key generated once on the data volume
# (Open WebUI exits without one; its own fallback file is outside the volume, so every
# restart would sign everyone out). Then the image's own start script.
START = (
    f'export OPENAI_API_KEY="$(cat {CHAT_SECRETS_DIR}/api-key)"\n'
    "key=/app/backend/data/.webui_secret_key\n"
    '[ -s "$key" ] || (umask 077; head -c 32 /dev/urandom | base64 > "$key")\n'
    'export WEBUI_SECRET_KEY="$(cat "$key")"\n'
    "exec bash /app/backend/start.sh\n"
)


def cognito_domain_prefix(environment_name: str) -> str:
    """A prefix unique in the region across AWS: the environment and the account."""
    return f"{environment_name}-chat-{cdk.Aws.ACCOUNT_ID}"


@dataclass(frozen=True, kw_only=True)
class ChatUiProps:
    config: ChatUiConfig
    cluster: eks.ICluster
    environment_name: str
    region: str
    hostname: str  # the endpoint's: the UI's rule and the sign-in callback
    certificate_arn: str
    api_key: secretsmanager.ISecret  # what the UI calls the endpoint with
    router_url: str  # the router's in-cluster URL (the UI's OpenAI base URL + /v1)
    router_namespace: str
    router_port: int
    load_balancer_cidrs: tuple[str, ...]
    ingress_group: str  # the ALB the API's Ingress is in
    after: tuple[IDependable, ...] = ()


class ChatUi(Construct):
    """A Cognito user pool (no self sign-up, admins create users; MFA per -c cognito_mfa),
    or the user's OIDC provider federated into it (its client secret read by
    CloudFormation from Secrets Manager); its domain and an app client for the ALB. The
    UI's objects (ChatUiChart) and Open WebUI from its pinned chart: one replica on the
    system nodes, its data on an encrypted gp3 volume, the API key from Secrets Manager
    as a file, Ollama, pipelines and Redis off, sign-up and the password form off, signed
    in by the `x-amzn-oidc-identity` header the ALB sets after its own sign-in.

    Hooks a subclass may override: `helm_values()`, `ingress_annotations()`."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ChatUiProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        config = props.config
        self.user_pool = cognito.UserPool(
            self, "UserPool", user_pool_name=f"{props.environment_name}-chat",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            mfa={CognitoMfa.OFF: cognito.Mfa.OFF, CognitoMfa.OPTIONAL: cognito.Mfa.OPTIONAL,
                 CognitoMfa.REQUIRED: cognito.Mfa.REQUIRED}[config.mfa],
            mfa_second_factor=(cognito.MfaSecondFactor(otp=True, sms=False)
                               if config.mfa is not CognitoMfa.OFF else None),
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_digits=True, require_lowercase=True,
                require_uppercase=True, require_symbols=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # Its users are state: a teardown keeps the pool (README, "Chat UI").
            removal_policy=cdk.RemovalPolicy.RETAIN, deletion_protection=True)
        providers = [cognito.UserPoolClientIdentityProvider.COGNITO]
        if config.oidc_issuer:
            oidc = cognito.UserPoolIdentityProviderOidc(
                self, "Oidc", user_pool=self.user_pool, name="oidc",
                issuer_url=config.oidc_issuer, client_id=config.oidc_client_id,
                # A dynamic reference: CloudFormation reads it, no template holds it.
                client_secret=cdk.SecretValue.secrets_manager(
                    config.oidc_client_secret_arn).unsafe_unwrap(),
                scopes=["openid", "email", "profile"],
                attribute_mapping=cognito.AttributeMapping(
                    email=cognito.ProviderAttribute.other("email")))
            providers = [cognito.UserPoolClientIdentityProvider.custom(oidc.provider_name)]
        self.domain = self.user_pool.add_domain("Domain", cognito_domain=cognito.CognitoDomainOptions(
            domain_prefix=cognito_domain_prefix(props.environment_name)))
        self.client = self.user_pool.add_client(
            "AlbClient", generate_secret=True,  # the ALB requires a client secret
            supported_identity_providers=providers,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL,
                        cognito.OAuthScope.PROFILE],
                callback_urls=[f"https://{props.hostname}{ALB_CALLBACK_PATH}"]),
            prevent_user_existence_errors=True)
        if config.oidc_issuer:
            self.client.node.add_dependency(oidc)

        role = pod_identity_role(self, "UiRole",
                                 description="Open WebUI: reads the endpoint's API key")
        props.api_key.grant_read(role)
        identity = associate(self, "UiPodIdentity", cluster=props.cluster,
                             namespace=CHAT_NAMESPACE, service_account=CHAT_SERVICE_ACCOUNT,
                             role=role)
        objects = render(ChatUiChart, "chat-ui", props=ChatUiChartProps(
            api_key_secret_arn=props.api_key.secret_arn, region=props.region,
            load_balancer_cidrs=props.load_balancer_cidrs,
            router_namespace=props.router_namespace, router_port=props.router_port))
        self.objects = eks.KubernetesManifest(self, "Objects", cluster=props.cluster,
                                              manifest=objects.to_json(), prune=True)
        if props.after:
            self.objects.node.add_dependency(*props.after)
        self.chart = pinned_chart(
            self, "OpenWebUi", cluster=props.cluster, chart="open-webui", release=CHAT_RELEASE,
            repository=versions.OPEN_WEBUI_CHART_REPOSITORY,
            version=versions.OPEN_WEBUI_CHART_VERSION, namespace=CHAT_NAMESPACE,
            values=self.helm_values())
        # Its namespace, SecretProviderClass and NetworkPolicy first; the key readable.
        self.chart.node.add_dependency(self.objects, identity, role)
        acknowledge(self.user_pool, "AwsSolutions::AwsSolutions-COG8",
                    "Cognito's threat protection needs the Plus feature plan (billed per "
                    "monthly active user); users sign in only through the ALB, admins create "
                    "them, and MFA is -c cognito_mfa.")
        if config.mfa is not CognitoMfa.REQUIRED:
            acknowledge(self.user_pool, "AwsSolutions::AwsSolutions-COG2",
                        "MFA is required only with -c cognito_mfa=required (optional lets "
                        "each user enrol); with -c oidc_issuer the identity provider asks "
                        "for it.")

    # -- hooks -------------------------------------------------------------------------

    def ingress_annotations(self) -> dict[str, str]:
        """The UI's rule on the endpoint's ALB: HTTPS, then the ALB's Cognito sign-in."""
        props = self.props
        return {
            "alb.ingress.kubernetes.io/group.name": props.ingress_group,
            "alb.ingress.kubernetes.io/group.order": str(UI_GROUP_ORDER),
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/listen-ports": '[{"HTTPS": 443}]',
            "alb.ingress.kubernetes.io/certificate-arn": props.certificate_arn,
            "alb.ingress.kubernetes.io/healthcheck-path": "/health",
            "alb.ingress.kubernetes.io/auth-type": "cognito",
            "alb.ingress.kubernetes.io/auth-idp-cognito": json.dumps({
                "userPoolARN": self.user_pool.user_pool_arn,
                "userPoolClientID": self.client.user_pool_client_id,
                "userPoolDomain": self.domain.domain_name}, separators=(",", ":")),
            "alb.ingress.kubernetes.io/auth-on-unauthenticated-request": "authenticate",
            "alb.ingress.kubernetes.io/auth-scope": "openid email profile",
            "alb.ingress.kubernetes.io/auth-session-timeout": str(SESSION_SECONDS),
        }

    def helm_values(self) -> dict:
        props = self.props
        env = {
            "WEBUI_URL": f"https://{props.hostname}",
            # The ALB signs users in and sets this header (the user's `sub`); the
            # NetworkPolicy lets only the ALB reach the pod. No password, no sign-up.
            "WEBUI_AUTH_TRUSTED_EMAIL_HEADER": "x-amzn-oidc-identity",
            "ENABLE_SIGNUP": "False",
            "ENABLE_LOGIN_FORM": "False",
            "DEFAULT_USER_ROLE": "user",
            # Settings come from here at every start; nothing (the key) is copied into
            # the UI's database.
            "ENABLE_PERSISTENT_CONFIG": "False",
            "ENABLE_OLLAMA_API": "False",
            "ANONYMIZED_TELEMETRY": "False",
            "DO_NOT_TRACK": "True",
        }
        return {
            "ollama": {"enabled": False},
            "pipelines": {"enabled": False},
            "websocket": {"enabled": True, "manager": "", "redis": {"enabled": False}},
            "replicaCount": 1,  # the in-memory websocket manager and a RWO volume
            "image": {"tag": versions.OPEN_WEBUI_IMAGE_TAG},
            "serviceAccount": {"create": True, "name": CHAT_SERVICE_ACCOUNT},
            "nodeSelector": {NODE_ROLE_LABEL: "system"},
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                          "limits": {"memory": "3Gi"}},
            "containerSecurityContext": {"allowPrivilegeEscalation": False,
                                         "capabilities": {"drop": ["ALL"]},
                                         "seccompProfile": {"type": "RuntimeDefault"}},
            "persistence": {"enabled": True, "size": f"{DATA_GIB}Gi",
                            "storageClass": GP3_STORAGE_CLASS},
            "openaiBaseApiUrl": f"{props.router_url}/v1",
            "openaiApiKey": "",  # the chart would render its default key as plain text
            "extraEnvVars": [{"name": k, "value": v} for k, v in env.items()],
            "volumes": [{"name": "api-key", "csi": {
                "driver": "secrets-store.csi.k8s.io", "readOnly": True,
                "volumeAttributes": {"secretProviderClass": CHAT_SECRETS}}}],
            "volumeMounts": {"container": [{"name": "api-key", "mountPath": CHAT_SECRETS_DIR,
                                            "readOnly": True}]},
            "command": ["bash", "-c"],
            "args": [START],
            "ingress": {"enabled": True, "class": "alb", "host": props.hostname,
                        "tls": False, "annotations": self.ingress_annotations()},
        }
