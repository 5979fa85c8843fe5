#!/usr/bin/env bash
# Set up from a clean clone, then run the main job on the embedded defaults (local files, SQLite for Optuna):
# train and evaluate PPO, REINFORCE, D3QN and Rainbow (CartPole-v1) and tabular Q-learning (Taxi-v4) from zoo_configs/,
# the CartPole-v1 curves in one plot, then a short tuning study of PPO. Models, checkpoints, learning curves and the
# study's report land under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
latest() { ls -d "runs/$1/$2"_* | sort -t_ -k2 -n | tail -1; }

$PY -m sb3_ext train --algo ppo --env CartPole-v1 -n 30000 --seed 0 --eval-freq 5000 --log-folder runs
$PY -m sb3_ext evaluate --model "$(latest ppo CartPole-v1)/model.zip" --episodes 20

$PY -m sb3_ext train --algo qlearning --env Taxi-v4 --seed 0 --eval-freq 50000 --eval-episodes 20 --log-folder runs
$PY -m sb3_ext evaluate --model "$(latest qlearning Taxi-v4)/model.zip" --episodes 100

$PY -m sb3_ext train --algo reinforce --env CartPole-v1 -n 30000 --seed 0 --eval-freq 10000 --log-folder runs
$PY -m sb3_ext evaluate --model "$(latest reinforce CartPole-v1)/model.zip" --episodes 20

$PY -m sb3_ext train --algo d3qn --env CartPole-v1 -n 30000 --seed 0 --eval-freq 10000 --save-freq 10000 --log-folder runs
$PY -m sb3_ext evaluate --model "$(latest d3qn CartPole-v1)/model.zip" --episodes 20

$PY -m sb3_ext train --algo rainbow --env CartPole-v1 -n 25000 --seed 0 --eval-freq 5000 --log-folder runs
$PY -m sb3_ext evaluate --model "$(latest rainbow CartPole-v1)/model.zip" --episodes 20

$PY -m tuning --algo ppo --env CartPole-v1 --n-trials 6 --n-timesteps 10000 --n-evaluations 4 \
  --output-folder runs/tuning --study-name ppo-cartpole-demo
$PY -m sb3_ext plot runs/{ppo,reinforce,d3qn,rainbow}/CartPole-v1_* --output runs/cartpole_curves.png
echo
echo "Models, checkpoints and learning curves: runs/<algo>/<env>_<n>/; all CartPole-v1 curves: runs/cartpole_curves.png;"
echo "tuning report: runs/tuning/ppo-cartpole-demo/report.md"
