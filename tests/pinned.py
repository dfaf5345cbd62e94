"""The outcomes of the shipped sample and of a generated stream, pinned.

A refactor, a faster hot path or a new policy mechanism must not change a single outbound
event under the default policy: these digests (sha256 over the sorted canonical outbound
events, ids included: loadtest.report.outcome_digest) were taken before the code was
reorganised, and every later change is held to them. A change that alters outcomes on purpose
(a domain fix) updates them in the same commit and says why.
"""

SAMPLE_DIGEST = "18c491305332dc31ecf67b529b7d74bc68b3fdbeb37f2b7cbc1b69c33e945421"
SAMPLE_INPUTS = {"applied": 454, "aside": 9, "duplicate": 1}
GENERATED_DIGEST = "a030b08ea3b727baaf4bd48e470a63ba3fe67099ed1847547ad80c35ba04c24e"  # 400 cases, seed 3
GENERATED_INPUTS = {"applied": 6155, "aside": 11, "duplicate": 45}
