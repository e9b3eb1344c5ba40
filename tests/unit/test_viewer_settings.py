"""RESULT_VIEWER_URL and its companions are checked when settings are read (every
command starts there): a template that could only give broken or unsigned links stops
the process with one line naming the variable, never later at the first link."""

import pytest
from pydantic import ValidationError

from adapters.settings import Settings, settings_problem


@pytest.mark.parametrize(
    "template",
    [
        "https://pacs.example/viewer?study={accession}&token={token}",
        "http://10.0.0.5:8080/view/{token}",
        "https://viewer.example.test#t={token}",
    ],
)
def test_a_viewer_url_with_a_token_placeholder_is_taken(monkeypatch, template):
    monkeypatch.setenv("RESULT_VIEWER_URL", f"  {template} ")
    assert Settings().result_viewer_url == template


def test_no_viewer_url_means_no_result_links(monkeypatch):
    monkeypatch.delenv("RESULT_VIEWER_URL", raising=False)
    settings = Settings()
    assert settings.result_viewer_url == ""
    assert (settings.result_viewer_audience, settings.result_link_seconds) == (
        "result-viewer",
        300,
    )


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("ftp://pacs.example/{token}", "must be an http:// or https:// URL with a host"),
        ("javascript:alert(1)//{token}", "must be an http:// or https:// URL with a host"),
        ("https:///{token}", "must be an http:// or https:// URL with a host"),
        ("https://pacs.example/viewer?study={accession}", "must contain {token}"),
        ("https://pacs.example/{token}?mrn={mrn}", "the only placeholders are"),
        ("https://pacs.example/{token} x", "must be an http:// or https:// URL with a host"),
    ],
)
def test_a_bad_viewer_url_is_refused_in_one_line_naming_it(monkeypatch, template, says):
    monkeypatch.setenv("RESULT_VIEWER_URL", template)
    with pytest.raises(ValidationError) as refused:
        Settings()
    problem = settings_problem(refused.value)
    assert problem.startswith("RESULT_VIEWER_URL: ")
    assert says in problem
    assert "\n" not in problem


@pytest.mark.parametrize("seconds", ["0", "301", "3600"])
def test_a_link_lifetime_over_five_minutes_is_refused(monkeypatch, seconds):
    monkeypatch.setenv("RESULT_LINK_SECONDS", seconds)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert settings_problem(refused.value).startswith("RESULT_LINK_SECONDS: ")
