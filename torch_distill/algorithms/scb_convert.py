"""Re-express a saved SCB as a quadratic-head SCB whose contexts look like real states (``torch-distill convert-env``).

An SCB found by a search can train one learner well and others badly: its contexts may lie far outside the real
observation box (the real states are then extrapolation for every learner, and each learner extrapolates its own
way), and its reward may have several maxima in the action (gradient-based actors stop at a local one). The
conversion keeps what the SCB teaches -- the policy a best-response learner fits on it -- and re-expresses it in
a form every learner reads alike:

1. train the source SCB's best-response learner (``bandit``, ``dpg`` or ``critic``, see
   :mod:`torch_distill.algorithms.rl.bandit`) on it: policy ``pi``;
2. collect real states: ``episodes`` real-env episodes of ``pi`` with Gaussian exploration noise (``noise`` x the
   action half-range), every visited state;
3. a new SCB (same widths, activation and latent size; observation scaling ``box`` or ``bounds``;
   ``reward_head="quadratic"``): its initial-state network is fitted so that its contexts match the real states
   (sliced Wasserstein distance in the scaled observation space), and its reward network so that the reward's
   maximiser ``mu(s)`` equals ``pi(s)`` on real states and contexts, with curvature ``curvature`` and offset 0.

The result is a starting point: refine it with ``torch-distill synth-env --reward-head quadratic --obs-scaling box
--init-env OUT ...``. Continuous actions only (the quadratic head's domain). Fitting uses Adam on the CPU/GPU of
``device``; everything is seeded.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from torch_distill.algorithms.rl import make_agent
from torch_distill.algorithms.rl.bandit import BANDIT_METHODS
from torch_distill.envs.synthetic import SyntheticContextualBandit, SyntheticEnvParams, observation_scaling
from torch_distill.log import progress_bar

__all__ = ["convert_scb"]


def _collect_states(env_id: str, act: Any, episodes: int, noise: float, half: Tensor, low: Tensor, high: Tensor,
                    generator: torch.Generator) -> Tensor:
    """Every observation of ``episodes`` real-env episodes of ``act`` (+ Gaussian noise), until every episode
    ended (rows that ended early contribute their reset observations too): ``[T * episodes, obs_dim]``."""
    from torch_distill.envs.vec import NativeVecEnv, make_native
    from torch_distill.evaluation import collect_observations

    real = make_native(env_id)
    venv = NativeVecEnv(real, episodes, generator.device, generator=generator)
    obs = venv.reset(None)

    def policy(o: Tensor) -> Tensor:
        a = act(o.unsqueeze(0))[0]
        a = a + noise * half * torch.randn(a.shape, generator=generator, device=a.device)
        return torch.maximum(torch.minimum(a, high), low)

    seen = collect_observations(venv, obs, policy, real.spec.max_episode_steps or 1000, stop_when_done=True)
    return seen[:-1].reshape(-1, real.spec.obs_dim)


def convert_scb(
    src: SyntheticContextualBandit,
    learner: str = "bandit",
    obs_scaling: str = "box",
    episodes: int = 64,
    noise: float = 0.3,
    curvature: float = 1.0,
    steps: int = 3000,
    batch_size: int = 512,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
) -> tuple[SyntheticContextualBandit, Tensor, dict[str, float]]:
    """Convert ``src`` (module docstring). Returns ``(new SCB, its genome [G], fit statistics)``. ``progress`` draws a
    bar of the ``2 * steps`` fit steps (default: when stderr is a terminal, :func:`~torch_distill.log.progress_enabled`)."""
    dev = torch.device(device)
    if not isinstance(src, SyntheticContextualBandit):
        raise ValueError(f"convert_scb: expected a synthetic contextual bandit (kind 'scb'), got {type(src).__name__}")
    if src.genome is None:
        raise ValueError("convert_scb: the source SCB carries no genome (load it from a file)")
    spec = src.real_spec
    if spec.discrete:
        raise ValueError(f"{spec.env_id}: convert_scb needs continuous actions (the quadratic reward head), the env has "
                         f"{spec.n_actions} discrete ones")
    if learner not in BANDIT_METHODS:
        raise ValueError(f"learner={learner!r}: expected one of {list(BANDIT_METHODS)}")
    if obs_scaling not in ("box", "bounds"):
        raise ValueError(f"obs_scaling={obs_scaling!r}: expected 'box' or 'bounds'")
    for name, v in (("episodes", episodes), ("steps", steps), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r}: expected a positive int")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise={noise!r}: expected a finite number >= 0")
    if not (math.isfinite(curvature) and curvature > 0):
        raise ValueError(f"curvature={curvature!r}: expected a positive number")
    gen = torch.Generator(device=dev).manual_seed(seed)

    algo = make_agent(learner, spec, 10_000, (64, 64), "relu")
    pi, _ = algo.train(algo.config, src, SyntheticEnvParams(src.genome.to(dev).unsqueeze(0)), gen, 1)

    def act(obs: Tensor) -> Tensor:
        return algo.act(pi, obs)

    loc, scale, bounded = observation_scaling(spec.env_id, with_bounded=True)
    dst = SyntheticContextualBandit(spec, src.hidden, src.latent_dim, src.activation, clip_actions=src.clip_actions,
                                    obs_loc=loc, obs_scale=scale, obs_squash=bounded if obs_scaling == "box" else None,
                                    reward_head="quadratic")
    mid, half = dst.action_box(dev)
    low, high = mid - half, mid + half
    states = _collect_states(spec.env_id, act, episodes, noise, half, low, high, gen)  # [S, obs]
    target_scaled = dst.scale_in(states)

    init_p, reward_p = (x.clone().requires_grad_(True) for x in dst.split(dst.init_genome(gen)[0]))
    bar = progress_bar(2 * steps, "fitting contexts, then rewards", "step", progress)
    opt = torch.optim.Adam([init_p], lr=3e-3)
    d = spec.obs_dim
    sw = torch.zeros(())
    for _ in range(steps):
        ctx = dst.scale_in(dst.scale_out(dst.init_net(init_p, torch.randn(batch_size, dst.latent_dim, generator=gen,
                                                                           device=dev))))
        tgt = target_scaled[torch.randint(len(states), (batch_size,), generator=gen, device=dev)]
        proj = torch.nn.functional.normalize(torch.randn(d, 64, generator=gen, device=dev), dim=0)
        sw = ((ctx @ proj).sort(0).values - (tgt @ proj).sort(0).values).pow(2).mean()
        opt.zero_grad()
        sw.backward()
        opt.step()
        bar.update(1)
    init_p = init_p.detach()

    opt = torch.optim.Adam([reward_p], lr=3e-3)
    c_raw = math.log(math.expm1(curvature))  # softplus(c_raw) = curvature
    fit = torch.zeros(())
    for _ in range(steps):
        half_b = batch_size // 2
        ctx = dst.scale_out(dst.init_net(init_p, torch.randn(half_b, dst.latent_dim, generator=gen, device=dev)))
        s = torch.cat([states[torch.randint(len(states), (batch_size - half_b,), generator=gen, device=dev)], ctx])
        with torch.no_grad():
            target = act(s.unsqueeze(0))[0]
        head = dst.reward_net(reward_p, dst.scale_in(s))
        mu = dst.head_mu(head)
        fit = (((mu - target) / half) ** 2).mean()
        loss = fit + (head[:, 1 + spec.action_dim:] - c_raw).pow(2).mean() + head[:, 0].pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.update(1)
    bar.close()
    genome = torch.cat([init_p, reward_p.detach()])
    with torch.no_grad():
        mu = dst.best_action(genome, states)
        err = ((mu - act(states.unsqueeze(0))[0]).abs() / half).mean().item()
    stats = {"real_states": float(len(states)), "context_sliced_wasserstein": float(sw.detach()), "mu_fit_mse": float(fit.detach()),
             "mu_abs_error_real_states": err}
    return dst, genome, stats
