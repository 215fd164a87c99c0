"""The package's layering (cli > algorithms > core > envs > leaf modules > es) holds: the import-linter contracts of
``.importlinter`` are kept, and they do forbid what they should."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint(config: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), "--config", str(config), "--no-cache"], cwd=ROOT, capture_output=True, text=True)


def test_import_contracts_are_kept():
    res = _lint(ROOT / ".importlinter")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_contracts_catch_an_env_importing_a_learner(tmp_path):
    """A contract that forbids envs -> algorithms reports such an import (the check can fail)."""
    cfg = tmp_path / "contracts.ini"
    cfg.write_text("[importlinter]\nroot_package = torch_distill\n\n[importlinter:contract:x]\nname = x\n"
                   "type = forbidden\nsource_modules =\n    torch_distill.algorithms\nforbidden_modules =\n"
                   "    torch_distill.envs\n")
    res = _lint(cfg)
    assert res.returncode != 0 and "BROKEN" in res.stdout
