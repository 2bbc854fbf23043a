"""Explanations on the terminal: colours say the sign and strength of each token's score."""

import numpy as np

from rnnclf.inference.explain import explain_predictions
from rnnclf.views.explanations import tokens_line


def test_terminal_colours_say_the_sign_and_strength(explain_predictor):
    [[found]] = explain_predictions(explain_predictor, ["the film was not good"], [[("neg", 0.9)]])
    found.scores = np.array([0.05, -2.0, 0.0, 1.0, 4.0])
    coloured = tokens_line(found, colour=True)
    assert coloured.startswith("the \x1b[30;48;5;")  # 0.05 of the largest: left plain
    assert "\x1b[30;48;5;46mgood\x1b[0m" in coloured  # the largest: the strongest green
    assert "\x1b[30;48;5;210mfilm\x1b[0m" in coloured  # half the largest, against: a middle red
    assert tokens_line(found, colour=False) == "the(+0.05) film(-2.00) was(+0.00) not(+1.00) good(+4.00)"
