"""The config key reference (docs/config.md is generated from it)."""

from __future__ import annotations

from pathlib import Path

import yaml

from rnnclf.config.schema import SECTIONS


def reference_rows() -> list[tuple[str, str, str]]:
    """(key, default, meaning) for every config key: the README's config reference."""
    rows = []
    for section_name, section in SECTIONS.items():
        for key, field in section.model_fields.items():
            default = (
                "required"
                if field.is_required()
                else yaml.safe_dump(
                    field.default if not isinstance(field.default, Path) else str(field.default),
                    default_flow_style=True,
                )
                .strip()
                .removesuffix("...")
                .strip()
            )
            rows.append((f"{section_name}.{key}", default, field.description or ""))
    return rows
