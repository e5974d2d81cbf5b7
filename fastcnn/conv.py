"""Placeholder: filled in by its author in this change."""

__all__: list[str] = []
