"""An area's own invitation and reminder wording (VOP_MESSAGE_TEMPLATES): used when set, and checked at
start-up (complete, neutral, with the link) so that a careless edit stops the platform, not a message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import settings
from surveys import messages

PACKAGED = messages.TEMPLATES_PATH.read_text(encoding="utf-8")


@pytest.fixture
def own_templates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "templates.yaml"
    monkeypatch.setenv("VOP_MESSAGE_TEMPLATES", str(path))
    yield path
    monkeypatch.delenv("VOP_MESSAGE_TEMPLATES")
    settings.get_settings.cache_clear()
    messages._templates.cache_clear()


def use(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    settings.get_settings.cache_clear()
    messages._templates.cache_clear()


def test_an_areas_own_wording_is_used(own_templates: Path) -> None:
    use(own_templates, PACKAGED.replace("A few questions for you", "Tell us how things are going"))
    subject, body = messages.render_message("invitation", "en", "email", "https://surveys.example.org/s/abc")
    assert subject == "Tell us how things are going"
    assert "https://surveys.example.org/s/abc" in body


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("A few questions for you", "About the crime you reported"), "is not neutral: crime"),
        (('en: "Feedback"', 'en: "Victim support"'), "sender_name.en must be present and neutral"),
        (("Start here: {link}", "Start here"), "templates.invitation.email.en has no {link}"),
        (("cy_reviewed: false", "cy_reviewed: false\nextra: 1"), "unknown field"),
    ],
)
def test_a_bad_file_stops_start_up_with_the_reason(
    own_templates: Path, change: tuple[str, str], reason: str
) -> None:
    old, new = change
    assert old in PACKAGED
    use(own_templates, PACKAGED.replace(old, new, 1))
    with pytest.raises(settings.SettingsError, match="VOP_MESSAGE_TEMPLATES") as caught:
        settings.load_settings()
    assert reason in str(caught.value)


def test_a_missing_file_or_wording_is_named(own_templates: Path) -> None:
    settings.get_settings.cache_clear()
    with pytest.raises(settings.SettingsError, match="cannot read"):
        settings.load_settings()
    cut = PACKAGED.split("  reminder:", 1)[0]  # only the invitations
    use(own_templates, cut)
    with pytest.raises(settings.SettingsError) as caught:
        settings.load_settings()
    assert "templates.reminder.email.en is missing" in str(caught.value)
