"""cdk8s charts, each synthesized in its own cdk8s.App scope and applied by the CDK app."""

from .inference_namespace import InferenceNamespaceChart, InferenceNamespaceProps, render

__all__ = ["InferenceNamespaceChart", "InferenceNamespaceProps", "render"]
