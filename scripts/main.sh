#!/usr/bin/env bash
# Set up from a clean clone, then run the main job on the embedded defaults:
# train PPO on CartPole-v1 from zoo_configs/ppo.yml, evaluate it, and leave the model and
# its learning curve under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
$PY -m sb3_ext train --algo ppo --env CartPole-v1 -n 30000 --seed 0 --eval-freq 5000 --log-folder runs
run=$(ls -d runs/ppo/CartPole-v1_* | sort -t_ -k2 -n | tail -1)
$PY -m sb3_ext evaluate --model "$run/model.zip" --episodes 20
echo "Model: $run/model.zip  Learning curve: $run/learning_curve.png"
