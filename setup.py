"""torch_distill: distilling reinforcement learning in PyTorch (HaDES, synthetic envs, batched envs)."""

import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (ROOT / "torch_distill" / "__init__.py").read_text()).group(1)

setup(
    name="torch_distill",
    version=VERSION,
    description="Distilling reinforcement learning in PyTorch: behaviour distillation (HaDES), learned "
    "synthetic environments and natively batched torch environments.",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["torch_distill", "torch_distill.*"]),
    package_data={"torch_distill": ["datasets/*.safetensors", "datasets/*.json", "synthetic_envs/*.safetensors", "synthetic_envs/*.md", "presets/*.toml", "datasets/images/*.safetensors", "datasets/images/*.md", "datasets/multitask/*.safetensors", "datasets/invariant/*.safetensors"]},
    install_requires=[
        # Users bring their own (CUDA) build; the README installs the CPU build that lies on disk first.
        "torch>=2.4,<2.15",
        "numpy>=1.24",
        "safetensors>=0.4",
        "tyro>=0.8",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "gymnasium>=1.0",
    ],
    extras_require={
        "envpool": ["envpool>=0.8"],
        "mujoco": ["mujoco>=3.0", "envpool>=0.8"],
        "minigrid": ["minigrid>=3.0"],
        "torchrl": ["torchrl>=0.8", "tensordict>=0.8"],
        "minatar": ["minatar==1.0.15"],  # the reference the batched MinAtar is tested against
        "cale": ["ale-py>=0.12"],
        "test": ["pytest>=7", "minigrid>=3.0", "envpool>=0.8", "mujoco>=3.0", "torchrl==0.14.*", "tensordict==0.14.*",
                 "import-linter>=2.0", "pytest-xdist>=3.0", "hypothesis>=6", "cmaes>=0.10", "minatar==1.0.15",
                 "ale-py>=0.12"],
        # Peers of scripts/bench_gridworld.py and scripts/bench_minatar.py (JAX; benchmarks only).
        "bench": ["jax", "navix", "xminigrid", "gymnax", "envpool>=0.8", "minigrid>=3.0", "minatar==1.0.15"],
        "dev": ["pytest>=7", "minigrid>=3.0", "envpool>=0.8", "mujoco>=3.0", "torchrl==0.14.*", "tensordict==0.14.*",
                "import-linter>=2.0", "pytest-xdist>=3.0", "hypothesis>=6", "cmaes>=0.10", "minatar==1.0.15",
                "ale-py>=0.12", "ruff"],
    },
    entry_points={"console_scripts": ["torch-distill=torch_distill.cli:main"]},
)
