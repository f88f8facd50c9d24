"""The compile settings the integrator suites run under.

"off": the eager step. "aot_eager": the whole `advance` captured by torch.compile's
graph capture (dynamo + AOT tracing) and run as a traced graph: cheap to compile, so it
runs in the fast suite. "inductor": `sampler.compile = "on"` itself (generated C++
kernels); its compilation takes 10-30 s per graph on 2 CPU cores, so those variants are
`slow` (test_compiled.py keeps one inductor test in the fast suite). Compiled settings
are skipped when torch.compile is unavailable in the build.
"""
import pytest

from langevin.compiled import compile_step, compile_unavailable_reason

_UNAVAILABLE = compile_unavailable_reason()
_skip = pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))

COMPILE_SETTINGS = [
    pytest.param("off", id="eager"),
    pytest.param("aot_eager", id="compiled-aot", marks=_skip),
    pytest.param("inductor", id="compiled-inductor", marks=[_skip, pytest.mark.slow]),
]


def scheme_settings(schemes, fast_compiled=("euler_maruyama",)):
    """(scheme, setting) pairs of every scheme under every setting; the compiled "aot_eager"
    variants of schemes outside `fast_compiled` are marked slow (CI time)."""
    cases = []
    for name in schemes:
        for setting in COMPILE_SETTINGS:
            value = setting.values[0]
            marks = list(setting.marks)
            if value == "aot_eager" and name not in fast_compiled:
                marks.append(pytest.mark.slow)
            cases.append(pytest.param(name, value, marks=marks, id=f"{name}-{setting.id}"))
    return cases


def with_compile(integrator, setting):
    """`integrator` as it runs under `setting` (one of COMPILE_SETTINGS)."""
    return integrator if setting == "off" else compile_step(integrator, backend=setting)
