"""sampler.compile and sampler.matmul_precision (experiments.setup.step_options): validation,
hashing, and a compiled run that resumes bitwise through the command line."""
import json

import pytest

from experiments.cli import main
from experiments.setup import config as cfg
from experiments.setup.config_keys import ConfigError
from experiments.setup.step_options import AUTO_COMPILE_FLOPS, compiled_integrator
from langevin.integrators import euler_maruyama
from langevin.potential import gaussian_potential


@pytest.mark.parametrize("key,value,message", [
    ("sampler.compile", "yes", "sampler.compile"),
    ("sampler.matmul_precision", "tf32", "sampler.matmul_precision"),  # on the CPU
    ("sampler.matmul_precision", "fp16", "sampler.matmul_precision"),
])
def test_bad_step_options_are_named(key, value, message):
    with pytest.raises(ConfigError, match=message):
        cfg.resolve([], [f"{key}={value}"])


@pytest.mark.parametrize("settings, named", [
    (["sampler.tempering=temperature", "sampler.ladder=[1.0, 2.0]"], "sampler.tempering"),
    (["sampler.integrator=gradient_descent", "sampler.burn_in=0"], "sampler.integrator"),
    (["sampler.anneal_final_temperature=0.01", "sampler.anneal_steps=100"],
     "sampler.anneal_final_temperature"),
])
def test_compile_on_is_refused_for_composite_steps(settings, named):
    """Replica exchange, gradient descent and annealing have no draw/advance split."""
    with pytest.raises(ConfigError, match=f"sampler.compile.*{named}"):
        cfg.resolve([], ["sampler.compile=on", *settings])


def test_defaults_keep_the_hash_and_a_compiled_run_has_its_own():
    config, _ = cfg.resolve([], [])
    legacy = {s: dict(v) for s, v in config.items()}
    for key in ("compile", "matmul_precision"):
        del legacy["sampler"][key]
    assert cfg.config_hash(config) == cfg.config_hash(legacy)
    compiled, _ = cfg.resolve([], ["sampler.compile=on"])
    assert cfg.config_hash(compiled) != cfg.config_hash(config)


def test_auto_compiles_on_the_cpu_only_above_the_measured_flops():
    config, _ = cfg.resolve([], ["sampler.compile=auto"])
    integrator = euler_maruyama(gaussian_potential({"x": 1.0}), {"x": 0.1}, 1.0)
    chosen, meta = compiled_integrator(config, integrator, None, AUTO_COMPILE_FLOPS / 2)
    assert chosen is integrator and meta == {"compile": "auto", "compiled": False}
    chosen, meta = compiled_integrator(config, integrator, None, AUTO_COMPILE_FLOPS)
    assert chosen.name == "euler_maruyama[compiled]" and meta["compiled"] is True
    off, _ = cfg.resolve([], [])
    assert compiled_integrator(off, integrator, None, 1e12)[0] is integrator


def test_a_run_records_how_its_step_ran(tmp_path):
    assert main(["run", "smoke", "--set", "sampler.compile=auto", "--set",
                 "sampler.progress=false", "--set", "diagnostics.bias_check=off", "--set",
                 "sampler.num_steps=40", "--set", "sampler.burn_in=10", "--set",
                 "sampler.checkpoint_every=20", "--set", "sampler.thin=10",
                 "--out", str(tmp_path / "run")]) == 0
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["segments"][-1]["step"] == {"compile": "auto", "compiled": False}
