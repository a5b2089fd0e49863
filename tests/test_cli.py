"""The command-line surface: every console command exists and explains every flag, flags accept both spellings,
and the shell launcher builds the same fine-tuning configuration as the console command."""
import argparse
import importlib
import json
import os
import subprocess
import sys
import tomllib

import pytest

from conftest import REPO_ROOT

with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as handle:
    CONSOLE_SCRIPTS = tomllib.load(handle)["project"]["scripts"]
CLI_DIR = os.path.join(REPO_ROOT, "bort", "cli")
COMMAND_MODULES = sorted(name[:-3] for name in os.listdir(CLI_DIR)
                         if name.endswith(".py") and "def console_main" in open(os.path.join(CLI_DIR, name)).read())


class _Captured(Exception):
    def __init__(self, parser):
        super().__init__("parser captured")
        self.parser = parser


def _command_parser(module_name, monkeypatch):
    """The argument parser a command's main() builds, taken at the moment it starts parsing."""
    original = argparse.ArgumentParser.parse_known_args

    def capture(self, args=None, namespace=None):
        if not self.add_help:  # a pre-parser reading one flag (fine-tuning's --preset): let it run
            return original(self, args, namespace)
        raise _Captured(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
    module = importlib.import_module(f"bort.cli.{module_name}")
    with pytest.raises(_Captured) as captured:
        module.main([])
    return captured.value.parser


def _actions(parser, where):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield f"{where} {choice.dest}", choice
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{where} {name}")
        else:
            yield where, action


def test_every_console_command_points_at_a_command_module():
    for command, target in CONSOLE_SCRIPTS.items():
        module, _, function = target.partition(":")
        assert module.startswith("bort.cli.") and function == "console_main", (command, target)
        assert module.rpartition(".")[2] in COMMAND_MODULES, f"{command}: {module} has no console_main"


@pytest.mark.parametrize("module_name", COMMAND_MODULES)
def test_every_flag_has_a_help_text(module_name, monkeypatch):
    parser = _command_parser(module_name, monkeypatch)
    missing = [f"{where}: {'/'.join(action.option_strings) or action.dest}"
               for where, action in _actions(parser, module_name)
               if not (isinstance(action.help, str) and action.help.strip())]
    assert not missing, f"flags without help: {missing}"


@pytest.mark.parametrize("module_name", COMMAND_MODULES)
def test_every_command_accepts_hyphenated_spellings(module_name, monkeypatch):
    from bort.cli.flags import ArgumentParser

    parser = _command_parser(module_name, monkeypatch)
    assert isinstance(parser, ArgumentParser), f"{module_name} does not use bort.cli.flags.ArgumentParser"


def test_hyphenated_and_old_spellings_give_the_same_configuration():
    from bort.cli.finetune import resolve_config

    underscores, _ = resolve_config(["--task_name", "RTE", "--max_len", "64", "--weight_decay", "3",
                                     "--output_dir", "x"], log=open(os.devnull, "w"))
    hyphens, _ = resolve_config(["--task-name", "RTE", "--max-len=64", "--weight-decay", "3", "--out", "x"],
                                log=open(os.devnull, "w"))
    assert underscores == hyphens
    assert (underscores.max_len, underscores.weight_decay, underscores.output_dir) == (64, 3.0, "x")


def test_predict_keeps_its_older_hyphenated_flags():
    from bort.cli.predict import build_parser

    old = build_parser().parse_args(["fill-mask", "--params", "p", "--input", "i", "--output", "o", "--top-k", "3",
                                     "--max-length", "9", "--batch-size", "4"])
    new = build_parser().parse_args(["fill-mask", "--params", "p", "--input", "i", "--output", "o", "--top_k", "3",
                                     "--max_len", "9", "--batch_size", "4"])
    assert vars(old) == vars(new)
    assert (new.top_k, new.max_length, new.batch_size) == (3, 9, 4)


def test_release_preset_is_the_default_and_flags_override_it():
    from bort.cli.finetune import resolve_config

    config, print_config = resolve_config(["--task_name", "RTE", "--output_dir", "x"], log=open(os.devnull, "w"))
    assert not print_config
    assert (config.epochs, config.ramp_up_epochs, config.batch_size, config.lr, config.weight_decay,
            config.warmup_ratio, config.early_stop, config.seed, config.max_len) == (1, 1, 8, 5e-5, 110.0, 0.45, 200,
                                                                                     2, 512)
    config, _ = resolve_config(["--task_name", "RTE", "--output_dir", "x", "--epochs", "4", "--warmup_ratio", "0.1"],
                               log=open(os.devnull, "w"))
    assert (config.epochs, config.warmup_ratio, config.weight_decay) == (4, 0.1, 110.0)


def test_a_missing_task_is_a_usage_error(capsys):
    from bort.cli.finetune import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--output_dir", "x"])
    assert exit_info.value.code == 2
    assert "--task_name is required" in capsys.readouterr().err


def _printed_config(command, tmp_path):
    result = subprocess.run(command + ["--output_dir", str(tmp_path / "run"), "--print_config"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout[result.stdout.index("{"):])


@pytest.mark.parametrize("launcher_args, console_args", [
    (["RTE"], ["--task_name", "RTE"]),
    (["DEMO"], ["--preset", "demo"]),
    (["TEST1"], ["--preset", "smoke", "--task_name", "WNLI", "--data_dir", "data/demo/glue"]),
])
@pytest.mark.slow
def test_launcher_and_console_command_build_the_same_configuration(launcher_args, console_args, tmp_path):
    console = os.path.join(os.path.dirname(sys.executable), "bort-finetune")
    from_launcher = _printed_config([os.path.join(REPO_ROOT, "run_finetune.sh")] + launcher_args, tmp_path)
    from_console = _printed_config([console] + console_args, tmp_path)
    assert from_launcher == from_console
    assert from_launcher["output_dir"] == str(tmp_path / "run")
    assert not os.path.exists(tmp_path / "run")  # --print_config trains nothing and writes nothing


@pytest.mark.slow
def test_pretraining_launcher_and_console_command_build_the_same_configuration(tmp_path):
    """run_pretrain.sh only picks the `release` preset, the data and the device: `bort-pretrain --preset release`
    with the same data and device resolves to the same settings, the release's."""
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "part-000.npz").write_bytes(b"")
    shards = str(tmp_path / "shards" / "*.npz")
    common = ["--ckpt_dir", str(tmp_path / "run"), "--print_config"]
    env = dict(os.environ, OMP_NUM_THREADS="1", GPU="cpu")

    def printed(command):
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout[result.stdout.index("{"):])

    console = os.path.join(os.path.dirname(sys.executable), "bort-pretrain")
    from_launcher = printed([os.path.join(REPO_ROOT, "run_pretrain.sh"), "1", shards, "", "", *common])
    from_console = printed([console, "--preset", "release", "--data", shards, "--dtype", "float32", "--device", "cpu",
                            *common])
    assert from_launcher == from_console
    assert (from_console["num_steps"], from_console["batch_size"], from_console["use_avg_len"], from_console["lr"],
            from_console["teacher_model"], from_console["mlm_weight"]) == (2_000_000, 1024, True, 1e-4,
                                                                          "roberta_24_1024_16", 0.1)
    assert not os.path.exists(tmp_path / "run")


def test_pretraining_preset_flags_override_it(tmp_path, capsys):
    from bort.cli.pretrain import main

    (tmp_path / "a.npz").write_bytes(b"")
    assert main(["--preset", "test", "--data", str(tmp_path / "a.npz"), "--num_steps", "7", "--print_config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert (config["num_steps"], config["batch_size"], config["teacher_model"], config["rank_digests"]) == (
        7, 2, "bort", True)
    assert main(["--data", str(tmp_path / "a.npz"), "--print_config"]) == 0
    assert json.loads(capsys.readouterr().out)["num_steps"] == 20  # no preset: the library's default
