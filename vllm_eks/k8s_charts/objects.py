"""Custom resources in cdk8s charts: an ApiObject whose spec is set as one JSON patch (the
spec is validated against the upstream CRD in the tests)."""

from __future__ import annotations

import json

import cdk8s
from constructs import Construct


def custom_resource(scope: Construct, construct_id: str, *, api_version: str, kind: str,
                    name: str, spec: dict, labels: dict[str, str],
                    namespace: str | None = None) -> cdk8s.ApiObject:
    obj = cdk8s.ApiObject(scope, construct_id, api_version=api_version, kind=kind,
                          metadata=cdk8s.ApiObjectMetadata(name=name, namespace=namespace,
                                                            labels=labels))
    obj.add_json_patch(cdk8s.JsonPatch.add("/spec", spec))
    return obj


def secret_provider_class(scope: Construct, construct_id: str, *, name: str,
                          labels: dict[str, str], objects: list[dict], region: str,
                          namespace: str | None = None) -> cdk8s.ApiObject:
    """Secrets Manager objects mounted as files by the Secrets Store CSI driver, read with
    the pod's own EKS Pod Identity role."""
    return custom_resource(
        scope, construct_id, api_version="secrets-store.csi.x-k8s.io/v1",
        kind="SecretProviderClass", name=name, namespace=namespace, labels=labels,
        spec={"provider": "aws", "parameters": {
            "objects": json.dumps(objects), "usePodIdentity": "true", "region": region}})
