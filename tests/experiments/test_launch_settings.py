"""[launch] settings: the SLURM submission submitit builds from them (checked without a
cluster), a submission through stand-in sbatch/srun commands, and clear errors for bad
settings before anything is created or submitted."""
import functools
import json
import os
import stat

import pytest

from experiments import cli, presets
from experiments.setup.config import ConfigError, resolve

submitit = pytest.importorskip("submitit")

from experiments.launch import settings, status  # noqa: E402

SLURM = ["launch.executor=slurm", "launch.partition=gpu-long", "launch.account=physics",
         "launch.qos=high", "launch.time_limit_min=240", "launch.cpus_per_job=8",
         "launch.gpus_per_job=1", "launch.mem_gb=32", "launch.max_parallel=3",
         "launch.signal_delay_s=180", "launch.max_requeues=7", "sampler.device=cuda",
         "launch.sbatch_options=['--constraint=h100', '--exclusive']",
         "launch.setup=['module load cuda/12.4']"]


def _launch(extra=()):
    config, _ = resolve([presets.get_preset("smoke").overrides], [*SLURM, *extra])
    return config["launch"]


def test_sbatch_text_states_every_setting(tmp_path):
    text = settings.sbatch_text(_launch(), tmp_path / "submitit", "smoke_sweep", num_jobs=5)
    lines = set(text.splitlines())
    for line in ("#SBATCH --partition=gpu-long", "#SBATCH --account=physics",
                 "#SBATCH --qos=high", "#SBATCH --time=240", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --gpus-per-node=1", "#SBATCH --mem=32GB", "#SBATCH --nodes=1",
                 "#SBATCH --ntasks-per-node=1", "#SBATCH --signal=USR2@180",
                 "#SBATCH --array=0-4%3", "#SBATCH --constraint=h100", "#SBATCH --exclusive",
                 "#SBATCH --job-name=smoke_sweep", "module load cuda/12.4"):
        assert line in lines, line
    assert "-m submitit.core._submit" in text
    # one job: no array; no partition/account/memory lines when unset
    single = settings.sbatch_text(
        _launch(["launch.partition=''", "launch.account=''", "launch.mem_gb=0"]),
        tmp_path / "submitit", "smoke", num_jobs=1)
    assert "--array" not in single and "--partition" not in single
    assert "--account" not in single and "--mem" not in single
    # the same parameters are accepted by submitit's SlurmExecutor (it validates them)
    submitit.slurm.slurm._make_sbatch_string(command="x", folder=tmp_path,
                                             **settings.slurm_parameters(_launch(), "x"))


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """sbatch/srun stand-ins on PATH: sbatch records the script and answers a job id."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch_calls"
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(f"#!/bin/sh\ncp \"$1\" {log}.$$\necho \"Submitted batch job 4242\"\n")
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for tool in (sbatch, bin_dir / "srun"):
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def _submitted_scripts(root):
    return [p.read_text() for p in root.glob("sbatch_calls.*")]


def test_sweep_is_submitted_as_one_job_array(fake_slurm, capsys):
    out = fake_slurm / "sweep"
    assert cli.main(["run", "smoke_sweep", *[a for s in SLURM for a in ("--set", s)],
                     "--out", str(out)]) == 0
    scripts = _submitted_scripts(fake_slurm)
    assert len(scripts) == 1
    assert "#SBATCH --array=0-1%2" in scripts[0]  # two points, at most min(2, 3) at once
    assert "#SBATCH --partition=gpu-long" in scripts[0]
    points = ["noise_variance=0.1", "noise_variance=0.2"]
    for k, point in enumerate(points):
        submitted = json.loads((out / point / "launch" / "submitted.json").read_text())
        assert (submitted["executor"], submitted["job_id"]) == ("slurm", f"4242_{k}")
    rows = status.collect(out)
    assert [(r.label, r.state, r.job_id) for r in rows] == [
        (p, "queued", f"4242_{k}") for k, p in enumerate(points)]
    assert "langevin status" in capsys.readouterr().out


@pytest.mark.parametrize("setting, key", [
    ("launch.partiton=gpu", "launch.partiton"),  # a misspelt key
    ("launch.gpus_per_job=-1", "launch.gpus_per_job"),
    ("launch.gpus_per_job=2", "launch.gpus_per_job"),
    ("launch.cpus_per_job=0", "launch.cpus_per_job"),
    ("launch.time_limit_min=0", "launch.time_limit_min"),  # required for slurm
    ("launch.sbatch_options=['--time=10']", "launch.sbatch_options"),
    ("launch.sbatch_options=['constraint=a100']", "launch.sbatch_options"),
    ("sampler.device=cuda:1", "sampler.device"),
    ("sampler.shards=5", "sampler.shards"),  # 4 chains
    ("launch.executor=kubernetes", "launch.executor"),
])
def test_bad_launch_settings_are_refused_before_anything_is_submitted(
        fake_slurm, capsys, setting, key):
    out = fake_slurm / "refused"
    code = cli.main(["run", "smoke_sweep", *[a for s in SLURM for a in ("--set", s)],
                     "--set", setting, "--out", str(out)])
    assert code == 2
    assert key in capsys.readouterr().err
    assert not out.exists() and not _submitted_scripts(fake_slurm)


def test_cpu_run_with_a_gpu_requested_is_refused():
    with pytest.raises(ConfigError, match="launch.gpus_per_job"):
        resolve([presets.get_preset("smoke").overrides],
                ["launch.executor=local", "launch.gpus_per_job=1"])


def test_slurm_without_sbatch_is_refused_before_anything_is_created(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    out = tmp_path / "run"
    assert cli.main(["run", "smoke", *[a for s in SLURM for a in ("--set", s)],
                     "--out", str(out)]) == 2
    assert "sbatch" in capsys.readouterr().err and not out.exists()


def test_without_submitit_the_executors_say_which_extra_to_install(tmp_path, monkeypatch,
                                                                   capsys):
    import sys

    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` raises ImportError
    out = tmp_path / "run"
    assert cli.main(["run", "smoke", "--executor", "local", "--out", str(out)]) == 2
    assert ".[cluster]" in capsys.readouterr().err and not out.exists()


def test_local_slots_pin_one_job_per_visible_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2,3")
    config, _ = resolve([presets.get_preset("smoke").overrides],
                        ["launch.executor=local", "launch.gpus_per_job=1", "sampler.device=cuda"])
    assert settings.local_slots(config["launch"]) == [(0,), (2,), (3,)]
    limited = {**config["launch"], "max_parallel": 2}
    assert settings.local_slots(limited) == [(0,), (2,)]
    cpu, _ = resolve([presets.get_preset("smoke").overrides],
                     ["launch.executor=local", "launch.max_parallel=3"])
    assert settings.local_slots(cpu["launch"]) == [(), (), ()]
    # submitit's LocalExecutor runs the job of slot (2,) with CUDA_VISIBLE_DEVICES=2, and a
    # CPU job with no GPU visible
    for slot, expected in (((2,), "2"), ((), "")):
        executor = submitit.LocalExecutor(folder=tmp_path / "submitit")
        executor.update_parameters(**settings.local_parameters(config["launch"], slot))
        # os.getenv is pickled by reference: it reads the job's own environment
        job = executor.submit(functools.partial(os.getenv, "CUDA_VISIBLE_DEVICES"))
        assert job.result() == expected
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(settings.LaunchError, match="launch.gpus_per_job"):
        settings.local_slots(config["launch"])
