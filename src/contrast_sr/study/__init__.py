"""Re-run the research notes' claims: declarative study files, a runner, verdicts, a report.

``configs/studies/claim-N.yml`` + ``budgets.yml`` (:mod:`.spec`) -> :func:`.runner.run_study`
(train, evaluate, measure) -> :mod:`.verdict` (decide each check) -> :mod:`.report` (README and
figures). Command line: ``contrast-sr study list | run CLAIM... | report DIR``.
"""
