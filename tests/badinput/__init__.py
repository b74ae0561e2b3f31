"""The table-driven bad-input test: every ``cases_*.py`` module here defines ``CASES``, a list of
:class:`harness.Case`; ``test_bad_input.py`` runs each one in a sandbox and checks the promises the README's
"Exit codes and errors" section makes (one ``error:`` line, the exit code, nothing lost, nothing written
outside the output folder)."""
