"""The command line (`python -m tracker ...`): one module per command group, shared helpers
in `common`.
"""
