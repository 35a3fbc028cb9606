"""Helpers shared by test files (tests/ is on sys.path: `from support.safety import ...`)."""
