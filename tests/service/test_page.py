"""The service's web page in a real headless Chromium (Debian's, driven by Playwright): a real LFW photo enrolled,
verified and identified, the stored carrier shown beside each decision."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.service.server import Server, create_tenant


def chromium() -> str:
    """The browser Playwright drives: ``$CHROMIUM``, else Debian's ``chromium`` (Playwright downloads none)."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no Chromium here: apt-get install chromium (.ci/run installs it)")
    return found


def test_the_page_enrols_verifies_and_identifies_a_real_photo(service, tmp_path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium()
    server: Server = service["server"]
    api_key = create_tenant(service["root"], "page")
    person, photos = service["people"][4]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url + "/")
        page.fill("#apikey", api_key)
        page.fill("#person", person)

        def act(button: str, photo: list[Path], expected: str) -> str:
            page.set_input_files("#photo", [str(p) for p in photo])
            page.click(f"#{button}")
            page.wait_for_function("(text) => document.getElementById('decision').textContent.includes(text)",
                                   arg=expected, timeout=120_000)  # fmt: skip
            return page.inner_text("#decision")

        assert act("enrol", photos[:2], "enrolled") == f"enrolled {person} (2 records)"
        assert page.evaluate("document.getElementById('carrier').naturalWidth") == 150
        assert act("verify", photos[2:], "match") == f"match: {person}"
        assert page.is_visible("#carrier") and page.is_visible("#probe")
        assert act("identify", photos[2:], "identified") == f"identified: {person}"
        page.screenshot(path=str(tmp_path / "page.png"))
        if os.environ.get("DISTORTION_PAGE_SCREENSHOT"):  # docs/service_page.png is made this way
            shutil.copy(tmp_path / "page.png", os.environ["DISTORTION_PAGE_SCREENSHOT"])
        page.fill("#apikey", "dst_wrong")
        assert act("verify", photos[2:], "refused") == "refused: the API key is not recognised"
        assert not errors
        browser.close()
