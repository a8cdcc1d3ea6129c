"""The Lambda handlers that talk to the cluster's Kubernetes API (kube.py): the teardown
guard (index.py, cleanup.py) and the pipeline's benchmark gate (benchmark_gate.py). A
package so that it ships in the wheel and tests import it; the Lambda functions import its
modules top-level."""
