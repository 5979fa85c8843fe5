from __future__ import annotations

import re
from pathlib import Path

import imageio.v3 as iio
import pytest
import yaml

from sb3_ext.cli import _build_parser, _load_model, _resolve_model, main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of a tiny DQN on CartPole, trained through the CLI."""
    logs = tmp_path_factory.mktemp("logs")
    argv = ["train", "--algo", "dqn", "--env", "CartPole-v1", "-n", "600", "--eval-freq", "0", "--seed", "0"]
    assert main([*argv, "--log-folder", str(logs)]) == 0
    return logs / "dqn" / "CartPole-v1_1"


def test_record_video_writes_a_playable_mp4(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video_dir = tmp_path / "videos" / "nested"  # created, parents included
    capsys.readouterr()
    assert main(["enjoy", "--model", str(run_dir / "model.zip"), "--record-video", str(video_dir), "--episodes", "1"]) == 0
    out = capsys.readouterr().out
    assert "Episode 1: return" in out
    assert "dqn on CartPole-v1: mean return" in out
    videos = list(video_dir.iterdir())
    assert [v.name for v in videos] == ["dqn-CartPole-v1-episode-0.mp4"]
    assert videos[0].stat().st_size > 0
    assert str(videos[0]) in out
    frames = iio.imread(videos[0], plugin="FFMPEG", index=...)
    assert frames.shape[0] > 1
    assert frames.shape[1:] == (400, 600, 3)  # CartPole's rgb_array


def test_one_video_per_episode(run_dir: Path, tmp_path: Path) -> None:
    video_dir = tmp_path / "videos"
    argv = ["enjoy", "--model", str(run_dir / "model.zip"), "--record-video", str(video_dir), "--episodes", "2"]
    assert main([*argv, "--stochastic", "--seed", "3"]) == 0
    assert sorted(v.name for v in video_dir.iterdir()) == [
        "dqn-CartPole-v1-episode-0.mp4",
        "dqn-CartPole-v1-episode-1.mp4",
    ]


@pytest.mark.parametrize("in_config", [False, True], ids=["run.yml", "run.yml+config.yml"])
def test_env_not_installed_exits_2_and_writes_nothing(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], in_config: bool
) -> None:
    # A model trained where a package registered its env, enjoyed where it is missing.
    moved = tmp_path / "run"
    moved.mkdir()
    (moved / "model.zip").write_bytes((run_dir / "model.zip").read_bytes())
    run_info = yaml.safe_load((run_dir / "run.yml").read_text())
    (moved / "run.yml").write_text(yaml.safe_dump({**run_info, "env_id": "NotInstalled-v0"}))
    if in_config:
        config = yaml.safe_load((run_dir / "config.yml").read_text())
        (moved / "config.yml").write_text(yaml.safe_dump({"NotInstalled-v0": config["CartPole-v1"]}))
    video_dir = tmp_path / "videos"
    capsys.readouterr()
    assert main(["enjoy", "--model", str(moved / "model.zip"), "--record-video", str(video_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "NotInstalled-v0" in err
    assert not video_dir.exists()


def test_no_display_without_record_video_exits_2_with_a_hint(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["enjoy", "--model", str(run_dir / "model.zip")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--record-video" in err


def test_bad_enjoy_input(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enjoy", "--model", str(tmp_path / "nope.zip"), "--record-video", str(tmp_path / "v")]) == 2
    assert "--model: no such file" in capsys.readouterr().err
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    assert main(["enjoy", "--model", str(run_dir / "model.zip"), "--record-video", str(not_a_dir)]) == 2
    assert "is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["enjoy", "--model", str(run_dir / "model.zip"), "--stochastic", "--deterministic"])
    assert exc.value.code == 2
    assert not (tmp_path / "v").exists()


def test_malformed_run_yml_exits_2_in_one_line(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    moved = tmp_path / "run"
    moved.mkdir()
    (moved / "model.zip").write_bytes((run_dir / "model.zip").read_bytes())
    argv = ["enjoy", "--model", str(moved / "model.zip"), "--record-video", str(tmp_path / "v")]
    for text, expected in (
        ("algo: [dqn", "run.yml: malformed YAML at line 1, column 11"),  # (the one YAML reader, as for configs)
        ("algo: dqn\n", "expected algo, env_id, seed and n_timesteps"),
    ):
        (moved / "run.yml").write_text(text)
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert expected in err
    assert not (tmp_path / "v").exists()


@pytest.mark.slow
def test_normalised_run_plays_with_its_statistics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--algo", "a2c", "--env", "Acrobot-v1", "-n", "200", "--eval-freq", "0", "--seed", "0"]
    assert main([*argv, "--log-folder", str(tmp_path / "logs")]) == 0
    run = tmp_path / "logs" / "a2c" / "Acrobot-v1_1"
    assert (run / "vecnormalize.pkl").is_file()  # zoo_configs/a2c.yml normalises Acrobot
    capsys.readouterr()
    assert main(["enjoy", "--model", str(run / "model.zip"), "--record-video", str(tmp_path / "videos")]) == 0
    episode = re.search(r"Episode 1: return (\S+), length (\d+)", capsys.readouterr().out)
    assert episode is not None
    assert float(episode[1]) in (-int(episode[2]), 1 - int(episode[2]))  # raw rewards (-1 a step), not normalised
    assert [v.name for v in (tmp_path / "videos").iterdir()] == ["a2c-Acrobot-v1-episode-0.mp4"]


@pytest.mark.parametrize("algo", ["dqn", "d3qn", "rainbow"])
def test_off_policy_models_play_without_their_replay_buffer(algo: str, tmp_path: Path) -> None:
    argv = ["train", "--algo", algo, "--env", "CartPole-v1", "-n", "300", "--eval-freq", "0", "--seed", "0"]
    assert main([*argv, "--log-folder", str(tmp_path), "--hyperparams", "learning_starts=100"]) == 0
    run = tmp_path / algo / "CartPole-v1_1"
    args = _build_parser().parse_args(["evaluate", "--model", str(run / "model.zip")])
    cfg, stats = _resolve_model(args)
    assert cfg.model_kwargs["buffer_size"] > 1
    model, env = _load_model(args, cfg, stats)
    assert model.replay_buffer is not None and model.replay_buffer.buffer_size == 1
    trained = cfg.spec.cls.load(run / "model.zip")
    obs = env.reset()
    assert (model.predict(obs, deterministic=True)[0] == trained.predict(obs, deterministic=True)[0]).all()
