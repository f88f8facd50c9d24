"""How a run's step executes: `sampler.compile`, `sampler.matmul_precision` and
`sampler.cpu_kernel`.

sampler.compile
    "off" (default): the eager step (bitwise reproducible and resumable on the CPU).
    "on": torch.compile of the whole step (`langevin.compiled`): the same draws, the
        chain equal to the eager one to float tolerance, not bitwise; a compiled run
        resumes bitwise as a compiled run (the key is hashed when not "off", so a run
        cannot be resumed under another setting).
    "auto": compile only where compiling was measured to be faster. On the CPU
        (benchmarks/README.md, one run, 2 shared cores): at (d, N, n, C) = (150, 700,
        3000, 64), F = 4.1·10¹⁰ forward FLOPs per step, the compiled step ran at 1.26x
        the eager one (the fused erf/erf' passes over the (C, n, N) temporaries); at
        (16, 64, 128, 64), F = 1.4·10⁸, at 0.31x the eager step on one thread. So on the
        CPU "auto" compiles when F ≥ `AUTO_COMPILE_FLOPS` (2·10⁹, the threshold of the
        automatic thread count, `experiments.setup.threads`), else runs eager. On CUDA, "auto"
        measures both steps for `AUTO_TRIAL_STEPS` steps from the initial state with a
        throwaway generator (`langevin.compiled.faster_step`; the run's stream is
        untouched) and keeps the faster one; the choice and both rates go to meta.json.
        (Not run on a GPU by this code's tests.)
    Replica exchange, T = 0 gradient descent and annealed schemes have no compiled step:
    "on" is refused, "auto" is eager.

sampler.matmul_precision
    "ieee" (default): float32 matmuls in IEEE float32.
    "tf32": CUDA only (TensorFloat-32 tensor-core matmuls, 10-bit mantissa products);
        refused on the CPU, where it would have no effect on the float32 kernels the
        step uses and a run claiming it would be mislabelled. Rounding the force
        deterministically is a systematic error, so a tf32 run's report adds a paired
        short IEEE continuation from its last checkpoint (`experiments.reporting.precision_check`)
        with the difference of its key observables in MCSE units. The chain state stays
        float32/float64. (Not run on a GPU by this code's tests.)

sampler.cpu_kernel
    "torch" (default): the loss and gradient are torch operations (the fused analytic
        backward of `langevin.models.two_layer` for one hidden layer).
    "native": the C kernel `langevin.native.two_layer` (compiled for the host CPU on
        first use, `langevin.native.build`): every chain's forward and backward in one
        call, the (C, n, N) work blocked so that it stays in the caches. For the
        one-hidden-layer erf network without bias, Gaussian likelihood at α = 1, float32
        on the CPU; refused otherwise, and with sampler.compile = "on" ("auto" is then
        eager). The same posterior and the same draws; the numbers differ from "torch" by
        rounding (erf and exp approximations of a few ulp, another summation order), so
        the key is hashed when not "torch". Each chain is computed by one thread in a
        fixed order: a run is bitwise reproducible and resumable at any thread count on
        the same machine and compiler. Measured: benchmarks/README.md.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from experiments.setup.architectures import canonical_name, fc_widths
from experiments.setup.config_keys import ConfigError, Key, one_of
from experiments.setup.run_mode_keys import GRADIENT_DESCENT, is_annealed
from experiments.setup.threads import forward_flops_per_step
from langevin.compiled import compile_step, faster_step
from langevin.native.two_layer import ACTIVATIONS as NATIVE_ACTIVATIONS

AUTO_TRIAL_STEPS = 20
AUTO_COMPILE_FLOPS = 2e9  # forward FLOPs per step (experiments.setup.threads) above which a CPU
                          # run with sampler.compile = "auto" is compiled

STEP_KEYS = {
    "compile": Key(str, "off", one_of("off", "on", "auto"),
                   "torch.compile of the whole step: 'off', 'on', or 'auto' (compiled only "
                   "where measured faster: CPU runs of >= 2e9 forward FLOPs per step; on "
                   "CUDA a timed trial)"),
    "matmul_precision": Key(str, "ieee", one_of("ieee", "tf32"),
                            "float32 matmuls: 'ieee', or 'tf32' (CUDA only; the report adds a "
                            "paired IEEE continuation in MCSE units)"),
    "cpu_kernel": Key(str, "torch", one_of("torch", "native"),
                      "the loss and gradient on the CPU: 'torch', or 'native' (a C kernel for "
                      "the one-hidden-layer erf network, float32, compiled on first use)"),
}


def validate(config: dict) -> None:
    """Cross-key checks of the step options (ConfigError naming the key)."""
    sampler = config["sampler"]
    reason = _no_compiled_step(config)
    if sampler["compile"] == "on" and reason is not None:
        raise ConfigError(f"config key 'sampler.compile' = 'on' is not available with {reason} "
                          "(no compiled step); use 'off' or 'auto'")
    if sampler["matmul_precision"] == "tf32" and not sampler["device"].startswith("cuda"):
        raise ConfigError("config key 'sampler.matmul_precision' = 'tf32' applies to CUDA "
                          f"devices only (sampler.device = {sampler['device']!r}); use 'ieee'")
    problem = native_kernel_problem(config) if sampler["cpu_kernel"] == "native" else None
    if problem is not None:
        raise ConfigError(f"config key 'sampler.cpu_kernel' = 'native' needs {problem}; "
                          "use 'torch'")
    if sampler["matmul_precision"] == "tf32" and sampler["dtype"] != "float32":
        raise ConfigError("config key 'sampler.matmul_precision' = 'tf32' needs "
                          f"sampler.dtype = 'float32', got {sampler['dtype']!r}")


def native_kernel_problem(config: dict) -> str | None:
    """What of the config the native kernel does not cover (None: it covers the run)."""
    sampler, model = config["sampler"], config["model"]
    checks = (
        (sampler["device"] == "cpu", f"sampler.device = 'cpu' (got {sampler['device']!r})"),
        (sampler["dtype"] == "float32", f"sampler.dtype = 'float32' (got {sampler['dtype']!r})"),
        (canonical_name(model["architecture"]) == "fc" and len(fc_widths(config)) == 1,
         "one hidden layer of the fc network (got model.architecture = "
         f"{model['architecture']!r} with widths {list(fc_widths(config))})"),
        (model["activation"] in NATIVE_ACTIVATIONS,
         f"model.activation in {list(NATIVE_ACTIVATIONS)} (got {model['activation']!r})"),
        (not model["bias"], "model.bias = false"),
        (config["posterior"]["likelihood"] == "gaussian" and model["output_scale"] == 1.0
         and not model["center_at_init"],
         "the plain Gaussian likelihood (posterior.likelihood = 'gaussian', "
         "model.output_scale = 1, model.center_at_init = false)"),
    )
    for ok, requirement in checks:
        if not ok:
            return requirement
    return None


def _no_compiled_step(config: dict) -> str | None:
    """Why the run's scheme has no draw/advance split to compile (None: it has one):
    replica exchange, T = 0 gradient descent and annealed schemes are composite steps."""
    sampler = config["sampler"]
    if sampler["cpu_kernel"] == "native":
        return "sampler.cpu_kernel = 'native'"
    if sampler["tempering"] != "none":
        return f"sampler.tempering = {sampler['tempering']!r}"
    if sampler["integrator"] == GRADIENT_DESCENT:
        return f"sampler.integrator = {GRADIENT_DESCENT!r}"
    if is_annealed(config):
        return "sampler.anneal_final_temperature > 0"
    return None


@contextmanager
def matmul_precision(name: str):
    """torch's CUDA matmul and cuDNN TF32 switches set for `name` inside the block, the
    previous values restored after it."""
    previous = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
    torch.backends.cudnn.allow_tf32 = name == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def compiled_integrator(config: dict, integrator, initial_state=None,
                        flops_per_step: float = 0.0):
    """(integrator to run, metadata) under sampler.compile (module docstring).
    `initial_state`: the state "auto" times its trial from on CUDA; `flops_per_step`:
    the forward FLOPs of all chains (`experiments.setup.threads.forward_flops_per_step`) that
    "auto" compares with AUTO_COMPILE_FLOPS on the CPU."""
    setting = config["sampler"]["compile"]
    device = torch.device(config["sampler"]["device"])
    eager = {"compile": setting, "compiled": False}
    if setting == "off" or (setting == "auto" and _no_compiled_step(config) is not None):
        return integrator, eager
    if setting == "auto" and device.type != "cuda" and flops_per_step < AUTO_COMPILE_FLOPS:
        return integrator, eager
    compiled = compile_step(integrator)
    if setting == "on" or device.type != "cuda":
        return compiled, {"compile": setting, "compiled": True}
    chosen, rates = faster_step(integrator, compiled, initial_state, AUTO_TRIAL_STEPS)
    return chosen, {"compile": setting, "compiled": rates["chosen"] == "compiled", **rates}


def run_integrator(config: dict, setup, num_train: int):
    """`compiled_integrator` for a run built by `experiments.setup.build.build_run` on
    `num_train` training points: (integrator, metadata for meta.json)."""
    trial_state = (setup.integrator.init(dict(setup.initial_theta))
                   if config["sampler"]["compile"] == "auto" and setup.device.type == "cuda"
                   else None)
    return compiled_integrator(config, setup.integrator, trial_state,
                               forward_flops_per_step(setup.initial_theta, num_train))
