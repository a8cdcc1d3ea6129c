# Two commands for a fresh machine (see README):
#   make synth   set up .venv and node_modules when missing, synthesize the whole
#                environment (embedded default model) into cdk.out
#   make test    set up when missing, run the whole test suite
# Pass CDK options through ARGS, e.g.  make synth ARGS="-c model=deepseek-r1"

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

# No credentials, no instance-metadata probing, no telemetry, no Node 20 end-of-life banner.
export AWS_EC2_METADATA_DISABLED := true
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: setup synth test bench preflight mutation clean

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: setup
	$(CDK) synth --quiet --no-notices $(ARGS)

test: setup
	$(PY) -m pytest $(ARGS)

bench: setup
	$(PY) scripts/bench_synth.py $(ARGS)

# Read-only checks of the real AWS account (quotas, AZ offerings, bootstrap, AMI, add-ons,
# certificate, admin role) before a deploy; the only target that uses credentials, e.g.
#   make preflight ARGS="--model deepseek-r1 --region us-west-2"
# Needs only the Python setup. Instance metadata is allowed again here, so an instance or
# container role works as credentials (see docs/preflight.md).
preflight: $(PY_STAMP)
	env -u AWS_EC2_METADATA_DISABLED $(PY) -m vllm_eks preflight $(ARGS)

# Single-line breakages of product code, each of which a targeted test must catch (slow:
# minutes; not part of `make test`).
mutation: setup
	$(PY) scripts/mutation_check.py $(ARGS)

clean:
	rm -rf cdk.out .pytest_cache
