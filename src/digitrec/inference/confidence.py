"""The low-confidence flag of ``predict`` and ``read``: when an answer deserves a second look.

A digit is flagged when the model's probability for it is below :data:`LOW_CONFIDENCE`. The
threshold was chosen on the development set of ``bench/photos.py --set dev`` (validation
digits and the "dev" font families as photos, every page condition; never MNIST test digits):
it is the lowest threshold under which the answers left unflagged are 99.5 % right. Whether
page cleanup touched the writing (a line or an edge removed where it met a stroke) is named in
the reason; on that set it did not predict a wrong answer by itself, so it does not flag alone.
The flag is separate from the "not a digit" reject option (issue 14). With the `best` model
(issue 17) the rule gives 0.50 (it gave 0.46 with the `accurate` model before it); as that
model rejects answers below 0.494 (its reject threshold, 0.506 on 1 - probability), only the
accepted answers between 0.494 and 0.50 are flagged in the default path, and under
``--no-reject`` all answers below 0.50.
"""

from __future__ import annotations

from digitrec.images.page import PageReport

# Probability of the answered digit below which it is flagged (chosen on the development set
# with the packaged digits model; see the module docstring).
LOW_CONFIDENCE = 0.50


def low_confidence(prob: float, page: PageReport | None = None) -> str | None:
    """Why an answer with probability ``prob`` is doubtful, or None when it is not.

    Args:
        prob: The model's probability of the digit it answered (0..1).
        page: What page cleanup dropped on the way, named in the reason when it touched the
            writing.
    """
    if prob >= LOW_CONFIDENCE:
        return None
    # Three decimals: two would print 0.496 as "0.50 is below 0.50".
    reason = f"probability {prob:.3f} is below {LOW_CONFIDENCE:.2f}"
    if page is not None and page.touched and page.removed:
        reason += f"; page cleanup removed ink touching the writing ({', '.join(page.removed)})"
    return reason
