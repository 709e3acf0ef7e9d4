"""Pure quality metrics: no ORM, so tests need no database (see each module's docstring).

- ``agreement``: Cohen's kappa, Fleiss' kappa, Krippendorff's alpha (nominal, ordinal, interval,
  ratio; pairwise preferences with ties), observed pairwise agreement.
- ``spans``: span F1 per label between annotators (exact and overlap match).
- ``text``: normalized edit similarity.
- ``stats``: seeded bootstrap confidence intervals, Wilson score intervals.
- ``gold``: scoring an answer against a gold answer, per field type.

Undefined values are ``None`` (nothing to compare: one annotator, no overlap). When every
pairable value is identical, chance-corrected coefficients are 0/0; they are reported as 1.0
(perfect observed agreement), which ``krippendorff.alpha`` refuses to compute.
"""
