"""docs/CONFIGURATION.md is generated from the settings model and kept current."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ConfigDict, Field

from bot import config_reference
from bot.config_reference import (
    DOC_PATH,
    all_settings,
    env_variable_names,
    main,
    render,
)
from bot.settings import Settings


def _model_leaves(model: type[BaseModel], prefix: str) -> list[str]:
    """Dotted keys of every leaf field, walked independently of the generator."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}.{field.alias or name}"
        annotation: Any = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _model_leaves(annotation, key)
        else:
            keys.append(key)
    return keys


def _every_leaf() -> list[str]:
    leaves: list[str] = []
    for section, field in Settings.model_fields.items():
        annotation: Any = field.annotation
        model = annotation if isinstance(annotation, type) else get_args(annotation)[-1]
        assert issubclass(model, BaseModel), section
        leaves += _model_leaves(model, section)
    return leaves


def test_committed_reference_is_current() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(), (
        "docs/CONFIGURATION.md is stale: run `python -m bot.config_reference`"
    )


@pytest.mark.parametrize("key", _every_leaf())
def test_every_setting_is_in_the_reference_with_a_description(key: str) -> None:
    documented = {leaf.key: leaf for leaf in all_settings()}
    assert key in documented, f"{key} is missing from the reference"
    leaf = documented[key]
    assert leaf.toml_key.replace("[]", "").replace('."<code>"', "") == key
    assert f"| `{leaf.toml_key}` |" in DOC_PATH.read_text(encoding="utf-8")
    assert leaf.description, f"{key} has no description: add a docstring under the field"


def test_environment_names_follow_the_settings_sources() -> None:
    names = env_variable_names()
    assert {
        "VESTNIK_DATABASE__URL",
        "VESTNIK_NOTIFY__MODE",
        "VESTNIK_NOTIFY__ADMIN_EMAILS",
        "VESTNIK_SMTP__FROM",  # the alias, as the environment source reads it
        "VESTNIK_TELEGRAM__MODE",
        "VESTNIK_LOG__FORMAT",
    } <= names
    assert "VESTNIK_SMTP__FROM_" not in names
    # List- and table-valued sections are TOML only.
    assert not any(
        name.startswith(("VESTNIK_SMS_SERVICES", "VESTNIK_EVENT_TYPES")) for name in names
    )


def test_reference_rows_show_key_variable_type_default_and_description() -> None:
    text = render()
    assert (
        "| `delivery.workers` | `VESTNIK_DELIVERY__WORKERS` | integer (≥ 1, ≤ 256) | `8` | "
        "How many notifications one process delivers at once, per lane (Telegram, SMS). |"
    ) in text
    assert (
        '| `notify.mode` | `VESTNIK_NOTIFY__MODE` | "off" / "test" / "live" | `"test"` |' in text
    )
    assert "| `sms_services[].kind` | TOML only |" in text
    assert "| `sms_services[].name` | TOML only | string (1-64 characters) | required |" in text
    assert '| `smtp.from` | `VESTNIK_SMTP__FROM` | string | `"vestnik@localhost"` |' in text
    assert "off \\| test \\| live" in text  # pipes inside cells are escaped


def test_descriptions_are_the_field_docstrings() -> None:
    class Example(BaseModel):
        model_config = ConfigDict(use_attribute_docstrings=True)

        plain: int = 1
        documented: str = "x"
        """What it is
        on two lines."""
        described: int = Field(default=2, description="from Field")

    assert Example.model_fields["documented"].description == "What it is\non two lines."
    settings = {
        leaf.key: leaf
        for leaf in config_reference._leaves(
            Example, section="example", key_prefix="example", toml_prefix="example", env_prefix="X"
        )
    }
    assert settings["example.documented"].description == "What it is on two lines."
    assert settings["example.described"].description == "from Field"
    assert settings["example.plain"].description == ""


def test_check_mode_detects_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "CONFIGURATION.md"
    assert main(["--check", "--output", str(output)]) == 1  # missing
    assert main(["--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == render()
    assert main(["--check", "--output", str(output)]) == 0
    output.write_text(render().replace("`VESTNIK_LOG__FORMAT`", "`VESTNIK_LOG__FMT`"))
    assert main(["--check", "--output", str(output)]) == 1
    assert "stale" in capsys.readouterr().err
