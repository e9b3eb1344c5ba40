"""The checks every page goes through can fail: axe-core finds serious problems, and the
sideways-scroll measure sees a page wider than a phone."""

import pytest

from tests.browser.conftest import PHONE, horizontal_overflow, serious_violations

BAD_PAGE = (
    "<html><head><title>t</title></head><body style='margin:0'><main><h1>Bad</h1>"
    "<img src='scan.png'><input type=text name=email>"
    "<div style='width:600px'>too wide for a phone</div></main></body></html>"
)


@pytest.fixture
def bad_page(browser):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_content(BAD_PAGE)
    yield page
    context.close()


def test_axe_names_rule_impact_and_element(bad_page) -> None:
    problems = serious_violations(bad_page)
    assert any(
        line.startswith("image-alt (critical): ") and line.endswith("at img") for line in problems
    )
    assert any(line.startswith("label (critical): ") for line in problems)


def test_a_page_wider_than_the_phone_is_measured(bad_page) -> None:
    assert horizontal_overflow(bad_page) == 600 - PHONE["width"]
