"""The rules of SPEC §5-§6, one module per part of the domain."""
