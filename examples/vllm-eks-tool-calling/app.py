#!/usr/bin/env python3
"""This repository's CDK app: vllm-eks's app, with this package's models in the catalog
(they arrive through the `vllm_eks.models` entry point once the package is installed).

    python -m venv .venv && .venv/bin/pip install <vllm-eks> .
    npm install && npx cdk synth -c model=qwen2.5-7b-instruct-tools   (cdk.json, package.json)
"""

from vllm_eks.app import main

if __name__ == "__main__":
    main()
