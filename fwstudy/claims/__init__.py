"""The claims ledger: the seed paper's measurable claims (``ledger.yaml``), each with the query
on the results that decides it and the rule that turns the numbers into a verdict.

The rules live in a data file committed before the results they judge, so a verdict can only
come from measurements (``evaluate``), never from a hand-typed conclusion. Framework-free:
the report's parent process reads results and never imports torch or tensorflow."""

from fwstudy.claims.evaluate import VERDICTS, evaluate, load_ledger

__all__ = ["VERDICTS", "evaluate", "load_ledger"]
