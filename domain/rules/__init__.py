"""The rules of docs/domain.md §5-§6, one module per part of the domain."""
