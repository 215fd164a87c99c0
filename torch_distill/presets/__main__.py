"""``python -m torch_distill.presets NAME``: print the path of a preset option file (for ``--config``)."""

import sys

from torch_distill.presets import PRESETS, preset_path

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in PRESETS:
        sys.exit(f"usage: python -m torch_distill.presets NAME, NAME one of {sorted(PRESETS)}")
    print(preset_path(sys.argv[1]))
