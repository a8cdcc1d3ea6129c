"""`python -m vllm_eks ...` (see vllm_eks/cli.py)."""

import sys

from .cli import main

sys.exit(main())
