#!/usr/bin/env python3
"""The CDK app (see vllm_eks/app.py): the only place that reads context and environment.

    cdk synth                          # the embedded default model
    cdk deploy VllmProdStack -c model=deepseek-r1
    cdk synth -c pipeline=true         # the delivery pipeline (pipeline.json)
"""

from vllm_eks.app import main

if __name__ == "__main__":
    main()
