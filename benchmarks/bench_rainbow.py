"""Rainbow against D3QN, SB3's DQN and sb3-contrib's QR-DQN, in the same run: final evaluations at the zoo budgets,
MinAtar Breakout against DQN with the shared hyperparameters equal, and training throughput.

Parts (``--parts``, all by default); every run is independent and single-threaded, and ``--workers`` processes take
them in turn (the same results as one by one). Each finished training run of ``final`` and ``minatar`` is kept in
``benchmarks/.runs/`` (:func:`_common.run_jobs`): the same command, given again for the same code, runs only what an
interrupted run had not finished, so a part longer than a sitting can be completed in several.

- ``final``: per env of ``--final-envs``, each algorithm trained with its zoo config for its zoo budget (ours from
  ``zoo_configs/``, DQN's and QR-DQN's from rl_zoo3 where ours has no entry), then a deterministic evaluation of
  ``--eval-episodes`` episodes (10 by default); median and worst seed per algorithm. CartPole-v1 and Acrobot-v1:
  Rainbow, D3QN, DQN and QR-DQN with ``--seeds`` (5); LunarLander-v3 and MountainCar-v0: Rainbow and DQN with
  ``--few-seeds`` (3). Targets: Rainbow's median at least every anchor's on each env; no Rainbow seed below -100 on
  Acrobot-v1; LunarLander-v3 median >= 200.
- ``minatar``: MinAtar/Breakout-v1 (pip extra ``minatar``), Rainbow and DQN from their zoo entries (the same shared
  hyperparameters), ``--few-seeds`` seeds at the entries' budget (300k steps); target: Rainbow's median final >= 1.5x DQN's.
  Its evaluations take 100 episodes unless ``--eval-episodes`` says otherwise: at these scores 10 are coarse (the
  same seeds of the train_freq 4 entries scored a ratio of 1.40 on 10 episodes, 1.06 on 100). About 110 minutes with
  ``--workers 2`` on 2 cores.
- ``support``: Rainbow's atoms on LunarLander-v3, chosen among ``--supports`` (``v_min:v_max``) without looking at any
  evaluation: each candidate is trained with the zoo entry otherwise unchanged on ``--few-seeds`` (3) and the one with
  the best median return over its last 100 training episodes (the training seeds' own episodes) is chosen; the finals
  reported are deterministic evaluations on fresh evaluation seeds (``30000 + seed``), with DQN's zoo config beside
  it on the same seeds. Target: Rainbow's median >= 200. (The ``final`` part evaluates on seeds ``10000 + seed``,
  which were looked at when LunarLander's support was first chosen: its LunarLander row is this part's.)
- ``throughput``: Rainbow (all six parts) and DQN with identical shared hyperparameters (the zoo's DQN CartPole-v1
  config), trained alternately for ``--throughput-steps`` steps, ``--throughput-rounds`` times; target ratio >= 0.6.
  With ``--throughput-variants``, Rainbow with each part switched off in turn is timed too (what each part costs).
  Then, what one gradient step costs (batch 64, after ``learning_starts``): SB3 DQN's ``train``, Rainbow's ``train``
  and :class:`PlainRainbow`, the same six parts' arithmetic written as a lean plain PyTorch loop without SB3, on a
  fixed batch and with prioritized replay (bounds on what an eager-PyTorch Rainbow can reach against SB3's DQN on
  this machine), each as it ships and again with denormal floats flushed to zero for all (``torch.set_flush_denormal``;
  Adam's moments of dead units decay through the denormal range, which x86 CPUs compute slowly).

    python benchmarks/bench_rainbow.py [--parts final minatar throughput support] [--final-envs CartPole-v1 ...]
                                       [--seeds 0 1 2 3 4] [--few-seeds 0 1 2] [--workers 2] [--smoke] [--no-record]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from _common import anchor_config, evaluate, interleaved, report, run_jobs, timed

from stable_baselines3.common.buffers import NStepReplayBuffer
from torch import nn
from torch.nn import functional as F

from sb3_ext import PrioritizedReplayBuffer, Rainbow, load_zoo_config
from sb3_ext.common.env_util import make_env
from sb3_ext.common.torch_layers import NoisyLinear, reset_noise
from sb3_ext.rainbow.rainbow import project_distribution

#: Algorithms of the final part per env: all four on the envs with 5 seeds, Rainbow and DQN on the others
FULL = ("rainbow", "d3qn", "dqn", "qrdqn")
FULL_ENVS = ("CartPole-v1", "Acrobot-v1")
#: Targets of single envs besides the medians, on Rainbow's summary: env -> (what is checked, check)
ENV_TARGETS: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "Acrobot-v1": ("no Rainbow seed below -100", lambda s: s["worst"] >= -100),
    "LunarLander-v3": ("Rainbow's median >= 200", lambda s: s["median"] >= 200),
}


def final_return(algo: str, env_id: str, seed: int, steps: int | None, eval_episodes: int) -> float:
    """Train ``algo`` with its zoo config on ``env_id`` and return its final deterministic evaluation."""
    th.set_num_threads(1)
    cfg = anchor_config(algo, env_id)
    model = cfg.make_model(cfg.make_env(seed=seed), seed=seed).learn(steps or cfg.n_timesteps)
    eval_env = make_env(env_id)
    eval_env.reset(seed=10_000 + seed)
    value = evaluate(model, eval_env, eval_episodes)
    print(env_id, algo, seed, value, flush=True)
    return value


def run_finals(
    jobs: list[tuple[str, str, int]], args: argparse.Namespace, eval_episodes: int
) -> dict[tuple[str, str], dict[int, float]]:
    """
    Run ``(algo, env_id, seed)`` jobs on ``--workers`` processes.

    :param jobs: the runs
    :param args: the command line
    :param eval_episodes: episodes of each final evaluation where ``--eval-episodes`` is not given
    :return: ``(algo, env_id) -> seed -> return``
    """
    episodes = eval_episodes if args.eval_episodes is None else args.eval_episodes
    kwargs = [
        dict(algo=algo, env_id=env_id, seed=seed, steps=args.final_steps, eval_episodes=episodes)
        for algo, env_id, seed in jobs
    ]
    values = run_jobs(final_return, kwargs, args.workers, store=not args.no_record)
    finals: dict[tuple[str, str], dict[int, float]] = {}
    for (algo, env_id, seed), value in zip(jobs, values, strict=True):
        finals.setdefault((algo, env_id), {})[seed] = value
    return finals


def summarise(finals: dict[int, float]) -> dict[str, Any]:
    return {"per_seed": finals, "median": statistics.median(finals.values()), "worst": min(finals.values())}


def report_finals(
    name: str, env_id: str, algos: tuple[str, ...], finals: dict[tuple[str, str], dict[int, float]], args: argparse.Namespace
) -> None:
    summaries = {algo: summarise(finals[(algo, env_id)]) for algo in algos}
    anchors = [algo for algo in algos if algo != "rainbow"]
    ours = summaries["rainbow"]["median"]
    beats = all(ours >= summaries[algo]["median"] for algo in anchors)
    line = "; ".join(
        f"{algo} median {s['median']:.1f} worst {s['worst']:.1f} ({[round(v, 1) for v in s['per_seed'].values()]})"
        for algo, s in summaries.items()
    )
    result: dict[str, Any] = {"env": env_id, "algos": summaries, "rainbow_median_at_least_every_anchor": beats}
    summary = f"{line}; Rainbow's median >= every anchor's: {'yes' if beats else 'NO'}"
    if env_id in ENV_TARGETS:
        what, check = ENV_TARGETS[env_id]
        result[what] = met = check(summaries["rainbow"])
        summary += f"; {what}: {'yes' if met else 'NO'}"
    report(name, result, summary, record=not args.no_record)


def part_final(args: argparse.Namespace) -> None:
    envs = [env_id for env_id in args.final_envs if _installed(env_id)]
    jobs = [
        (algo, env_id, seed)
        for env_id in envs
        for seed in (args.seeds if env_id in FULL_ENVS else args.few_seeds)
        for algo in (FULL if env_id in FULL_ENVS else ("rainbow", "dqn"))
    ]
    finals = run_finals(jobs, args, eval_episodes=10)
    for env_id in envs:
        algos = FULL if env_id in FULL_ENVS else ("rainbow", "dqn")
        n_seeds = len(args.seeds if env_id in FULL_ENVS else args.few_seeds)
        report_finals(
            f"Rainbow final evaluation ({env_id}, zoo configs and budgets, {n_seeds} seeds)", env_id, algos, finals, args
        )


def part_minatar(args: argparse.Namespace) -> None:
    env_id = "MinAtar/Breakout-v1"
    if not _installed(env_id):
        return
    jobs = [(algo, env_id, seed) for seed in args.few_seeds for algo in ("rainbow", "dqn")]
    finals = run_finals(jobs, args, eval_episodes=100)
    rainbow, dqn = summarise(finals[("rainbow", env_id)]), summarise(finals[("dqn", env_id)])
    ratio = rainbow["median"] / dqn["median"] if dqn["median"] > 0 else float("inf")
    report(
        f"Rainbow vs DQN on MinAtar/Breakout-v1 (shared hyperparameters equal, {len(args.few_seeds)} seeds)",
        {"rainbow": rainbow, "dqn": dqn, "ratio": ratio},
        f"median final Rainbow {rainbow['median']:.2f} vs DQN {dqn['median']:.2f} (ratio {ratio:.2f}, target >= 1.5); "
        f"per seed Rainbow {list(rainbow['per_seed'].values())}, DQN {list(dqn['per_seed'].values())}",
        record=not args.no_record,
    )


#: Seeds of the report's evaluation episodes in the support part: never used to choose anything
FRESH_EVAL_SEED = 30_000


def support_run(algo: str, env_id: str, seed: int, support: list[float] | None, steps: int | None, eval_episodes: int) -> dict:
    """
    Train ``algo`` with its zoo config (Rainbow's atoms on ``support``, ``[v_min, v_max]``, when given) and return the
    mean return of its last 100 training episodes (its training seed's own episodes, what a support is chosen on) and
    its final deterministic evaluation on fresh evaluation seeds (what is reported).
    """
    th.set_num_threads(1)
    cfg = anchor_config(algo, env_id)
    if support is not None:
        cfg = load_zoo_config(algo, env_id, cfg.source, hyperparams=dict(v_min=support[0], v_max=support[1]))
    model = cfg.make_model(cfg.make_env(seed=seed), seed=seed).learn(steps or cfg.n_timesteps)
    training = float(np.mean([info["r"] for info in model.ep_info_buffer]))
    eval_env = make_env(env_id)
    eval_env.reset(seed=FRESH_EVAL_SEED + seed)
    fresh = evaluate(model, eval_env, eval_episodes)
    print(env_id, algo, seed, support, training, fresh, flush=True)
    return {"training_last100": training, "fresh_eval": fresh}


def part_support(args: argparse.Namespace) -> None:
    """Rainbow's support on LunarLander-v3 chosen on training episodes, reported on fresh evaluation seeds beside DQN."""
    env_id = "LunarLander-v3"
    if not _installed(env_id):
        return
    supports = [[float(v) for v in text.split(":")] for text in args.supports]
    jobs = [dict(algo="rainbow", support=support) for support in supports] + [dict(algo="dqn", support=None)]
    episodes = args.eval_episodes or 10
    kwargs = [
        dict(job, env_id=env_id, seed=seed, steps=args.final_steps, eval_episodes=episodes)
        for job in jobs
        for seed in args.few_seeds
    ]
    results = iter(run_jobs(support_run, kwargs, args.workers, store=not args.no_record))
    runs = {str(job["support"]): {seed: next(results) for seed in args.few_seeds} for job in jobs}

    def median(support: Any, key: str) -> float:
        return statistics.median(run[key] for run in runs[str(support)].values())

    chosen = max(supports, key=lambda support: median(support, "training_last100"))
    ours, dqn = runs[str(chosen)], runs["None"]
    fresh = {seed: run["fresh_eval"] for seed, run in ours.items()}
    dqn_fresh = {seed: run["fresh_eval"] for seed, run in dqn.items()}
    candidates = "; ".join(
        f"[{s[0]:g}, {s[1]:g}] training last-100 median {median(s, 'training_last100'):.1f} "
        f"(fresh evaluation, not used to choose: {median(s, 'fresh_eval'):.1f})"
        for s in supports
    )
    report(
        f"Rainbow's support on LunarLander-v3 chosen on training episodes, finals on fresh evaluation seeds "
        f"(zoo configs and budgets, {len(args.few_seeds)} seeds)",
        {"runs": runs, "chosen": chosen},
        f"chosen [{chosen[0]:g}, {chosen[1]:g}] by the median return of the last 100 training episodes; candidates: "
        f"{candidates}; finals ({episodes} episodes, evaluation seeds {FRESH_EVAL_SEED}+seed): rainbow median "
        f"{statistics.median(fresh.values()):.1f} worst {min(fresh.values()):.1f} ({[round(v, 1) for v in fresh.values()]}); "
        f"dqn median {statistics.median(dqn_fresh.values()):.1f} ({[round(v, 1) for v in dqn_fresh.values()]}); "
        f"Rainbow's median >= 200: {'yes' if statistics.median(fresh.values()) >= 200 else 'NO'}",
        record=not args.no_record,
    )


#: Rainbow with one part switched off at a time, to see what each costs (the throughput part times them too)
THROUGHPUT_VARIANTS: dict[str, dict[str, Any]] = {
    "rainbow": {},
    "-noisy": dict(policy_kwargs=dict(noisy=False)),
    "-distributional": dict(distributional=False),
    "-PER": dict(replay_buffer_class=NStepReplayBuffer),
    "-double": dict(double_q=False),
    "d3qn-like": dict(distributional=False, policy_kwargs=dict(noisy=False)),
}


def part_throughput(args: argparse.Namespace) -> None:
    cfg = anchor_config("dqn", "CartPole-v1")

    def build(variant: dict[str, Any] | None) -> Any:
        env = cfg.make_env(seed=0)
        if variant is None:
            return cfg.make_model(env, seed=0)
        kwargs = dict(cfg.model_kwargs)
        kwargs["policy_kwargs"] = {**kwargs.get("policy_kwargs", {}), **variant.get("policy_kwargs", {})}
        return Rainbow(env=env, seed=0, **kwargs, **{k: v for k, v in variant.items() if k != "policy_kwargs"})

    def learning_time(variant: dict[str, Any] | None) -> Any:
        def run() -> float:
            model = build(variant)  # (building the model is not timed)
            return timed(lambda: model.learn(args.throughput_steps))

        return run

    variants = THROUGHPUT_VARIANTS if args.throughput_variants else {"rainbow": {}}
    runs = {"dqn": learning_time(None), **{name: learning_time(variant) for name, variant in variants.items()}}
    times = interleaved(runs, args.throughput_rounds)
    sps = {name: args.throughput_steps / statistics.median(values) for name, values in times.items()}
    ratio = sps["rainbow"] / sps["dqn"]
    others = ", ".join(f"{name} {sps[name] / sps['dqn']:.2f}" for name in variants if name != "rainbow")
    steps = gradient_step_times(build, args.step_rounds)
    names = ("rainbow", "plain", "plain_replay")
    step_ratios = {mode: {name: ms["dqn"] / ms[name] for name in names} for mode, ms in steps.items()}

    def step_summary(mode: str) -> str:
        ms, ratios = steps[mode], step_ratios[mode]
        return f"DQN {ms['dqn']:.2f}, " + ", ".join(f"{name} {ms[name]:.2f} ({ratios[name]:.2f})" for name in names)

    report(
        "Rainbow vs DQN training throughput (CartPole-v1, zoo DQN hyperparameters)",
        {"steps_per_s": sps, "ratio": ratio, "times": times, "gradient_step_ms": steps, "gradient_step_ratios": step_ratios},
        f"Rainbow {sps['rainbow']:.0f} steps/s, DQN {sps['dqn']:.0f} steps/s, ratio {ratio:.2f} (target >= 0.6)"
        + (f"; ratio to DQN with one part off: {others}" if others else "")
        + f"; one gradient step in ms (ratio to DQN's), as shipped: {step_summary('as shipped')}; with denormals "
        f"flushed in all: {step_summary('denormals flushed')} (plain: PlainRainbow on a fixed batch, plain_replay: "
        "with prioritized sampling and priority updates)",
        record=not args.no_record,
    )


class PlainRainbow:
    """
    Rainbow's gradient step written as a plain PyTorch loop (as CleanRL writes its agents), the leanest we found, to
    bound what any eager-PyTorch Rainbow can cost: the network of the zoo's DQN CartPole-v1 config (4-256-256, ReLU)
    with dueling categorical streams (51 atoms) kept as the rows of one noisy layer whose noisy weights are formed
    before one matrix product, and per step new noise in both networks, the target network's distributions, the online
    network's expected Q-values of the next observations (double Q), the projection, the online log-probabilities, the
    cross-entropy weighted per sample, backward, gradient clipping and Adam; no logging. Without ``replay`` the batch is
    a fixed set of tensors (no sampling, which DQN's step includes, and no priorities), so its step is cheaper than any
    complete Rainbow's; with ``replay`` each batch is sampled from sb3-ext's prioritized 3-step buffer (filled with
    random transitions) and its priorities are updated.

    :param replay: sample every batch from a prioritized replay buffer and update its priorities
    :param batch_size: batch size
    :param n_actions: number of actions
    :param n_atoms: number of atoms
    """

    def __init__(self, replay: bool, batch_size: int = 64, n_actions: int = 2, n_atoms: int = 51) -> None:
        self.online, self.target = self._net(n_actions, n_atoms), self._net(n_actions, n_atoms)
        self.target.load_state_dict(self.online.state_dict())
        self.optimizer = th.optim.Adam(self.online.parameters(), lr=2.3e-3)
        self.support = th.linspace(0.0, 100.0, n_atoms)
        self.n_actions, self.n_atoms, self.batch_size = n_actions, n_atoms, batch_size
        self.buffer: PrioritizedReplayBuffer | None = None
        if replay:
            self.buffer = PrioritizedReplayBuffer(
                10_000, spaces.Box(-5.0, 5.0, (4,)), spaces.Discrete(n_actions), "cpu", n_steps=3, alpha=0.5, beta=0.4
            )
            rng = np.random.default_rng(0)
            for _ in range(5_000):
                obs, next_obs = rng.normal(size=(2, 1, 4)).astype(np.float32)
                done = rng.random(1) < 0.05
                self.buffer.add(obs, next_obs, rng.integers(n_actions, size=(1, 1)), np.ones(1), done, [{}])
        size = (batch_size, 1)
        self.fixed = (th.randn(batch_size, 4), th.randint(0, n_actions, size), th.randn(batch_size, 4))
        self.fixed += ((th.rand(size) < 0.05).float(), th.rand(size), th.full(size, 0.99**3), th.rand(size))

    def _batch(self) -> tuple[tuple[th.Tensor, ...], np.ndarray | None]:
        """:return: observations, actions, next observations, dones, rewards, discounts, weights; the indices"""
        if self.buffer is None:
            return self.fixed, None
        data = self.buffer.sample(self.batch_size)
        assert data.discounts is not None
        return (*data[:5], data.discounts, data.weights), data.indices

    @staticmethod
    def _net(n_actions: int, n_atoms: int) -> nn.ModuleDict:
        body = nn.Sequential(nn.Linear(4, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())
        return nn.ModuleDict(dict(body=body, head=NoisyLinear(256, (1 + n_actions) * n_atoms)))

    def _logits(self, net: nn.ModuleDict, obs: th.Tensor) -> th.Tensor:
        head = net["head"]
        out = F.linear(net["body"](obs), head.weight, head.bias).view(-1, 1 + self.n_actions, self.n_atoms)
        value, advantage = out[:, :1], out[:, 1:]
        return value + advantage - advantage.mean(dim=1, keepdim=True)

    def train(self, gradient_steps: int) -> None:
        """:param gradient_steps: number of gradient steps"""
        atoms = (-1, 1, self.n_atoms)
        for _ in range(gradient_steps):
            (obs, actions, next_obs, dones, rewards, discounts, weights), indices = self._batch()
            reset_noise(self.online)
            reset_noise(self.target)
            with th.no_grad():
                next_probabilities = th.softmax(self._logits(self.target, next_obs), dim=-1)
                next_q = th.softmax(self._logits(self.online, next_obs), dim=-1) @ self.support
                picked = next_probabilities.gather(1, next_q.argmax(dim=1).view(-1, 1, 1).expand(atoms)).squeeze(1)
                target = project_distribution(picked, rewards, dones, discounts, self.support)
            log_probabilities = th.log_softmax(self._logits(self.online, obs), dim=-1)
            actions = actions.long().view(-1, 1, 1).expand(atoms)
            cross_entropy = -(target * log_probabilities.gather(1, actions).squeeze(1)).sum(dim=1)
            loss = (weights.view(-1) * cross_entropy).mean()
            if self.buffer is not None and indices is not None:
                self.buffer.update_priorities(indices, cross_entropy.detach().numpy())
            loss.item()
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.online.parameters(), 10.0)
            self.optimizer.step()


def gradient_step_times(build: Callable[[dict[str, Any] | None], Any], rounds: int) -> dict[str, dict[str, float]]:
    """
    Median milliseconds of one gradient step (batch 64) of SB3's DQN, Rainbow (both built by ``build`` and trained to
    ``learning_starts`` first) and :class:`PlainRainbow` (on a fixed batch and with prioritized replay), timed
    alternately over ``rounds`` rounds of 200 steps, as they ship and with denormals flushed to zero in all. Flushing
    resets the optimizers' denormal moments to zero, so the measurements as shipped come first, on fresh models.

    :param build: the throughput part's model builder (None: DQN; a dict: Rainbow with those changes)
    :param rounds: rounds per mode
    :return: mode -> name -> milliseconds
    """
    dqn, rainbow = build(None), build({})
    for model in (dqn, rainbow):
        model.learn(2_000)  # past learning_starts, and Adam's moments of dead units decaying as in a real run
    plain, plain_replay = PlainRainbow(replay=False), PlainRainbow(replay=True)
    for reference in (plain, plain_replay):
        reference.train(2_000)
    steps = 200
    trains: dict[str, Callable[[], Any]] = {
        "dqn": lambda: dqn.train(steps, dqn.batch_size),
        "rainbow": lambda: rainbow.train(steps, rainbow.batch_size),
        "plain": lambda: plain.train(steps),
        "plain_replay": lambda: plain_replay.train(steps),
    }
    results = {}
    for mode in ("as shipped", "denormals flushed"):
        th.set_flush_denormal(mode == "denormals flushed")
        times = interleaved({name: (lambda train=train: timed(train)) for name, train in trains.items()}, rounds)
        results[mode] = {name: 1000 * statistics.median(values) / steps for name, values in times.items()}
    th.set_flush_denormal(False)
    return results


def _installed(env_id: str) -> bool:
    try:
        make_env(env_id).close()
        return True
    except Exception as exc:  # Box2D or MinAtar missing
        print(f"skipping {env_id}: {exc}")
        return False


PARTS = {"final": part_final, "minatar": part_minatar, "throughput": part_throughput, "support": part_support}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    parser.add_argument("--final-envs", nargs="+", default=["CartPole-v1", "Acrobot-v1", "LunarLander-v3", "MountainCar-v0"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds on CartPole and Acrobot")
    parser.add_argument("--few-seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds on the other envs and MinAtar")
    parser.add_argument("--final-steps", type=int, default=None, help="override the zoo budgets (smoke runs)")
    parser.add_argument("--eval-episodes", type=int, default=None, help="per final evaluation (10 in final, 100 in minatar)")
    parser.add_argument("--throughput-steps", type=int, default=20_000)
    parser.add_argument("--throughput-rounds", type=int, default=3)
    parser.add_argument("--throughput-variants", action="store_true", help="also time Rainbow with one part off at a time")
    parser.add_argument("--step-rounds", type=int, default=7, help="rounds of 200 gradient steps per algorithm and mode")
    parser.add_argument(
        "--supports", nargs="+", default=["-150:150", "-300:300"], help="support part: Rainbow's candidate v_min:v_max"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes for the training runs")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets to check the script (implies --no-record)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.seeds, args.few_seeds, args.final_steps, args.eval_episodes = [0], [0], 600, 2
        args.throughput_steps, args.throughput_rounds, args.step_rounds, args.no_record = 1_500, 1, 1, True
    th.set_num_threads(1)
    gym.logger.min_level = 40  # (MinAtar's envs make gymnasium's checker warn about their boolean boxes)
    for part in args.parts:
        PARTS[part](args)


if __name__ == "__main__":
    main()
