"""Convert a saved SCB with an MLP reward head into one with the quadratic reward head, keeping its best responses.

    python scripts/convert_scb_reward_head.py IN.safetensors OUT.safetensors [--contexts 20000] [--steps 3000]

The quadratic head (``reward_head="quadratic"``, see ``torch_distill.envs.synthetic``) has one maximum ``mu(s)``
inside the action box, so greedy and gradient-based learners (TD3/DDPG actors) find the same best action. This
script makes a quadratic-head SCB that behaves like ``IN`` for a greedy learner, as the start of a search
(``torch-distill synth-env --reward-head quadratic --init-env OUT ...``):

- the initial-state network (and the observation scaling) are copied unchanged;
- the reward network is fitted by Adam on contexts drawn from ``IN``: ``mu(s)`` to ``IN``'s best action on a grid of
  ``--grid`` actions per dimension (mean squared error), and ``(v, c)`` to ``IN``'s rewards on that grid by least
  squares with ``mu`` held fixed.

Continuous-action SCBs only. Prints the fit errors; the result is written to a temporary file, then renamed.
"""

from __future__ import annotations

import argparse
import sys

import torch

from torch_distill.algorithms.bandit import candidate_actions
from torch_distill.algorithms.rl_common import FlatMLP
from torch_distill.envs.synthetic import SyntheticContextualBandit, load_synthetic_env, save_synthetic_env


def convert(src: SyntheticContextualBandit, contexts: int, steps: int, grid: int, seed: int) -> tuple[SyntheticContextualBandit, torch.Tensor, dict[str, float]]:
    if not isinstance(src, SyntheticContextualBandit) or src.real_spec.discrete:
        raise ValueError(f"{src!r}: expected a continuous-action SCB")
    if src.reward_head != "mlp":
        raise ValueError(f"{src.spec.env_id}: the SCB already has reward_head={src.reward_head!r}")
    dst = SyntheticContextualBandit(src.real_spec, src.hidden, src.latent_dim, src.activation,
                                    clip_actions=src.clip_actions, obs_loc=src.obs_loc, obs_scale=src.obs_scale,
                                    obs_squash=src.obs_squash, reward_head="quadratic")
    gen = torch.Generator().manual_seed(seed)
    init_p, reward_p = src.split(src.genome)
    with torch.no_grad():
        states = src.initial_obs(src.genome, torch.randn(contexts, src.latent_dim, generator=gen))
        cand = candidate_actions(src.spec, grid, gen)
        target = src.scores(reward_p.unsqueeze(0), states.unsqueeze(0), src.action_input(cand))[0]  # [N, K]
        best = cand[target.argmax(-1)]  # [N, A]
    net: FlatMLP = dst.reward_net
    params = dst.split(dst.init_genome(gen)[0])[1].clone().requires_grad_(True)
    opt = torch.optim.Adam([params], lr=3e-3)
    mid, half = dst._action_box
    a_dim = dst.real_spec.action_dim
    x = dst.scale_in(states)
    for step in range(steps):
        idx = torch.randint(contexts, (512,), generator=gen)
        head = net(params, x[idx])
        mu = mid + half * torch.tanh(head[:, 1:1 + a_dim])
        fit_mu = ((mu - best[idx]) ** 2).sum(-1).mean()
        frozen = torch.cat([head[:, :1], head[:, 1:1 + a_dim].detach(), head[:, 1 + a_dim:]], dim=-1)
        r = dst._quadratic(frozen.unsqueeze(1), cand)  # [B, K]
        fit_r = ((r - target[idx]) ** 2).mean()
        opt.zero_grad()
        (fit_mu + fit_r).backward()
        opt.step()
    genome = torch.cat([init_p, params.detach()])
    with torch.no_grad():
        mu = dst.best_action(genome, states)
        err = (mu - best).abs().mean().item()
        r = dst.scores(dst.split(genome)[1].unsqueeze(0), states.unsqueeze(0), dst.action_input(cand))[0]
        rmse = ((r - target) ** 2).mean().sqrt().item()
    return dst, genome, {"mu_abs_error": err, "reward_rmse": rmse, "reward_std": target.std().item()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--contexts", type=int, default=20_000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--grid", type=int, default=41)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        src = load_synthetic_env(args.src)
        dst, genome, stats = convert(src, args.contexts, args.steps, args.grid, args.seed)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_synthetic_env(args.out, dst, genome, {"converted_from": args.src, "conversion": stats})
    print(f"{args.out}: mean |mu - best action| {stats['mu_abs_error']:.3f}, reward RMSE {stats['reward_rmse']:.3f} "
          f"(reward std {stats['reward_std']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
