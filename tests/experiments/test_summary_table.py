"""The printed theory table: every sampled value with its MCSE beside the theory values."""
from experiments.reporting.summary_table import theory_table


def _row(text: str, quantity: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith(quantity)]
    return line


def test_theory_rows_show_the_mcse_whichever_name_it_has():
    theory = {
        "gp": {"He1": {"sampled": 1.115, "mcse": 0.0083, "gp": 1.099}},
        "proportional": {"order_parameter": {"sampled": 1.343, "sampled_mcse": 0.0719,
                                             "theory": 1.405, "converged": True}},
    }
    text = theory_table(theory)
    he1 = _row(text, "gp.He1")
    assert "1.115 ± 0.0083" in he1 and "gp 1.099" in he1
    order = _row(text, "proportional.order_parameter")
    assert "1.343 ± 0.072" in order and "theory 1.405" in order
    assert "sampled_mcse" not in order and "converged" not in order
