"""`summary.json` as text a person can read: what `langevin report` (and the end of a
run) prints. Plain fixed-width tables, no dependency:

1. the run (name, status, chains × draws),
2. the scalar observables: mean, MCSE of the mean, rank-normalized R̂, bulk ESS,
3. the thermometer: the virial temperature of each layer against T (in MCSE),
4. the step-size bias by step halving (or the acceptance rate of MALA),
5. every theory comparison: the sampled value ± MCSE beside each theory's value,
6. the classification section (experiments.reporting.classification_report): the ensemble predictor's
   test error beside single chains', and the final values of the classification observables,
7. the warnings, numbered, last (where the eye ends).
"""
from __future__ import annotations

import math
import textwrap

WRAP = 96


def _number(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}g}"
    return str(value)


def table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned first column, right-aligned others, a rule under the header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(c).rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def _section(title: str, body: str) -> str:
    return f"{title}\n{body}"


def scalar_table(diagnostics: dict) -> str:
    rows = []
    for name, stats in diagnostics.items():
        if "mean" in stats:
            rows.append([name, _number(stats["mean"]), _number(stats["mcse_mean"], 2),
                         _number(stats["r_hat"]), _number(stats["ess_bulk"], 3)])
        else:
            label = f"{name} {tuple(stats.get('shape', []))}"
            if "symmetric_statistics" in stats:
                label += " (unit-symmetric)"
            rows.append([label, "", "", _number(stats.get("r_hat_max")),
                         _number(stats.get("ess_bulk_min"), 3)])
    return table(["observable", "mean", "MCSE", "R-hat", "ESS bulk"], rows)


def thermometer_table(thermometer: dict) -> str:
    rows = [[f"virial temperature {layer}", _number(t["mean"]), _number(t["mcse"], 2),
             _number(t["target_temperature"]), _number(t["deviation_in_mcse"], 2)]
            for layer, t in thermometer.items()]
    return table(["layer", "T_virial", "MCSE", "T", "(T_v - T)/MCSE"], rows)


def bias_table(bias: dict) -> str:
    status = bias.get("status", "-")
    if "acceptance" in bias:
        return f"status {status}; acceptance: {bias['acceptance']}"
    observables = bias.get("observables") or {}
    if not observables:
        return f"status: {status}"
    rows = [[name, _number(o.get("bias"), 3), _number(o.get("bias_mcse"), 2),
             _number(o.get("run_mcse"), 2), "yes" if o.get("resolved") else "no"]
            for name, o in observables.items()]
    head = f"step_size {bias.get('step_size')}, {bias.get('steps')} steps per arm ({status})"
    return head + "\n" + table(["observable", "bias", "bias MCSE", "run MCSE", "resolved"], rows)


def _comparisons(node, path: str, rows: list[list[str]]) -> None:
    """Rows 'path | sampled ± MCSE | theory values' from every {sampled, mcse, ...} entry
    (the MCSE may also be named sampled_mcse) and every scalar pair X, X_mcse of the theory
    section."""
    if not isinstance(node, dict):
        return
    if "sampled" in node and not isinstance(node["sampled"], (list, dict)):
        mcse = node.get("mcse", node.get("sampled_mcse"))
        theories = [f"{k} {_number(v)}" for k, v in node.items()
                    if k not in ("sampled", "mcse", "sampled_mcse") and isinstance(v, (int, float))
                    and not isinstance(v, bool)]
        rows.append([path, f"{_number(node['sampled'])} ± {_number(mcse, 2)}",
                     ", ".join(theories)])
        return
    for key, value in node.items():
        if isinstance(value, dict):
            _comparisons(value, f"{path}.{key}" if path else key, rows)
        elif (isinstance(value, float) and f"{key}_mcse" in node
              and isinstance(node[f"{key}_mcse"], (int, float))):
            rows.append([f"{path}.{key}" if path else key,
                         f"{_number(value)} ± {_number(node[f'{key}_mcse'], 2)}", ""])


def theory_table(theory: dict) -> str:
    if isinstance(theory.get("skipped"), str):
        return f"(theory comparisons {theory['skipped']})"
    rows: list[list[str]] = []
    _comparisons(theory, "", rows)
    if not rows:
        return "(no theory comparison for this run)"
    return table(["quantity", "sampled ± MCSE", "theory"], rows)


def precision_table(check: dict) -> str:
    """The tf32-vs-IEEE paired continuation (experiments.reporting.precision_check) as rows."""
    observables = check.get("observables") or {}
    rows = [[name, _number(o.get("difference"), 3), _number(o.get("difference_mcse"), 2),
             _number(o.get("difference_in_mcse"), 2), _number(o.get("run_mcse"), 2)]
            for name, o in observables.items()]
    head = (f"{check.get('precision')} vs ieee, {check.get('steps')} steps per arm "
            f"({check.get('status')})")
    return head + "\n" + table(["observable", "difference", "MCSE", "in MCSE", "run MCSE"], rows)


def format_summary(summary: dict) -> str:
    """The whole report as text (module docstring)."""
    run = summary.get("run", {})
    parts = [f"run {run.get('name')!s}: {run.get('status')}, {run.get('num_chains')} chains "
             f"x {run.get('num_draws')} draws"]
    parts.append(_section("Observables", scalar_table(summary.get("diagnostics", {}))))
    if summary.get("thermometer"):
        parts.append(_section("Thermometer (virial temperature = T at equilibrium)",
                              thermometer_table(summary["thermometer"])))
    if summary.get("step_size_bias"):
        parts.append(_section("Step-size bias (step halving)",
                              bias_table(summary["step_size_bias"])))
    if summary.get("matmul_precision_check"):
        parts.append(_section("Matmul precision (paired IEEE float32 continuation)",
                              precision_table(summary["matmul_precision_check"])))
    parts.append(_section("Theory comparisons", theory_table(summary.get("theory") or {})))
    if summary.get("classification"):
        parts.append(_section("Classification (ensemble of chains; final values)",
                              classification_tables(summary["classification"])))
    notes = summary.get("warnings") or []
    if notes:
        wrapped = [textwrap.fill(note, WRAP, initial_indent=f"{i}. ",
                                 subsequent_indent="   ") for i, note in enumerate(notes, 1)]
        parts.append(_section(f"Warnings ({len(notes)})", "\n".join(wrapped)))
    else:
        parts.append("No warnings: every diagnostic is within its Monte Carlo error.")
    return "\n\n".join(parts)


# The classification section (experiments.reporting.classification_report).
def classification_tables(section: dict) -> str:
    """The ensemble predictor's test errors (ensemble vs mean ± SE of single chains, at the
    last draw and averaged over draws) and the final values of the classification
    observables (last draw: mean ± SE over chains; all draws: mean ± MCSE)."""
    parts = []
    ensemble = section.get("ensemble")
    if ensemble:
        rows = []
        for when in ("last_draw", "draw_average"):
            for kind, entry in ensemble[when].items():
                if not isinstance(entry, dict):
                    continue
                rows.append([f"{kind} ({when.replace('_', ' ')})", _number(entry["ensemble"]),
                             f"{_number(entry['single_chain_mean'])} ± "
                             f"{_number(entry['single_chain_se'], 2)}"])
        parts.append(f"{ensemble['task']}, {ensemble['num_chains']} chains, "
                     f"{ensemble['test_points']} test points\n"
                     + table(["test error", "ensemble", "single chains (± SE)"], rows))
    final = section.get("final_values")
    if final:
        rows = [[name, f"{_number(v['last_draw_mean'])} ± {_number(v['last_draw_se'], 2)}",
                 _number(v["last_draw_sd_over_chains"], 3),
                 f"{_number(v['mean'])} ± {_number(v['mcse'], 2)}"]
                for name, v in final.items()]
        parts.append(table(["observable", "last draw (± SE)", "sd over chains",
                            "all draws (± MCSE)"], rows))
    return "\n\n".join(parts)
