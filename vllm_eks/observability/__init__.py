"""Dashboards, alert rules and autoscaling signals, all built from the metric contract
(`vllm_eks.metrics`)."""
