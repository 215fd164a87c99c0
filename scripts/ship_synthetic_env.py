"""Copy an evolved synthetic env into the package's shipped envs, recording a fresh evaluation in its metadata.

    python scripts/ship_synthetic_env.py runs/<run>/env_best.safetensors SCB-CartPole-v1 \
        --eval-json eval.json --eval-command "torch-distill evaluate-env ... --json-out eval.json"

The file keeps its genome and metadata (command, config, generation, the run's own final evaluation); the
evaluation JSON written by ``torch-distill evaluate-env --json-out`` is added under ``shipped_evaluation`` together
with the command that produced it. Written atomically to ``torch_distill/synthetic_envs/<NAME>.safetensors``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from torch_distill.envs.synthetic import SHIPPED_DIR, load_synthetic_env, save_synthetic_env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="synthetic-env file produced by torch-distill synth-env")
    ap.add_argument("name", help="shipped name, <KIND>-<env id>[_tag], e.g. SCB-CartPole-v1")
    ap.add_argument("--eval-json", help="result of torch-distill evaluate-env --json-out on SRC")
    ap.add_argument("--eval-command", default="", help="the command that produced --eval-json")
    ap.add_argument("--steps-to-solve-json", help="result of scripts/steps_to_solve.py on SRC (stored as steps_to_solve)")
    ap.add_argument("--steps-to-solve-command", default="", help="the command that produced --steps-to-solve-json")
    ap.add_argument("--note", default="", help="free text stored in the metadata")
    args = ap.parse_args(argv)
    env = load_synthetic_env(args.src)
    prefix = env.file_prefix + "-" + env.real_spec.env_id
    if not (args.name == prefix or args.name.startswith(prefix + "_")):
        ap.error(f"name {args.name!r}: expected {prefix!r} or {prefix}_<tag> for this {env.kind} env")
    meta = dict(env.metadata)  # type: ignore[attr-defined]
    meta["shipped_from"] = str(args.src)
    meta["shipped"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    if args.eval_json:
        meta["shipped_evaluation"] = {"command": args.eval_command, "result": json.loads(Path(args.eval_json).read_text())}
    if args.steps_to_solve_json:
        res = json.loads(Path(args.steps_to_solve_json).read_text())
        meta["steps_to_solve"] = {"command": args.steps_to_solve_command,
                                  "result": {k: v for k, v in res.items() if k != "args"}}
    if args.note:
        meta["note"] = args.note
    out = Path(SHIPPED_DIR) / f"{args.name}.safetensors"
    save_synthetic_env(out, env, env.genome, meta)
    print(f"shipped {args.src} as {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
