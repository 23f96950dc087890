"""A real `nestvec serve` process: the OpenAI client, slow clients, schemathesis and a real browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="nestvec serve needs the 'serve' extra")

import nestvec
from tests.conftest import paper_docs, papers
from tests.serving import serve_process


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("serve")
    with nestvec.Collection.create(root / "papers") as collection:
        collection.add(paper_docs(150))
    (root / "data").mkdir()
    with serve_process([str(root / "papers"), "--data-dir", str(root / "data")], log=root / "server.log") as url:
        yield url


def test_openai_client_gets_the_library_vectors(server: str, encoder: nestvec.Encoder) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused-on-loopback")
    texts = ["The quick brown fox.", "Binary quantization with rescoring keeps recall."]
    response = client.embeddings.create(model="minilm", input=texts)  # the client asks for base64
    vectors = np.array([d.embedding for d in response.data])
    np.testing.assert_allclose(vectors, encoder.encode(texts), atol=1e-5)
    assert response.usage.prompt_tokens == sum(encoder.token_counts(texts))
    short = client.embeddings.create(model="minilm", input=texts[0], dimensions=128, encoding_format="float")
    assert len(short.data[0].embedding) == 128 and abs(np.linalg.norm(short.data[0].embedding) - 1) < 1e-5
    with pytest.raises(openai.NotFoundError, match="serves the model"):
        client.embeddings.create(model="text-embedding-3-small", input="hi")


def test_a_slow_client_does_not_block_others(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as slow:
        # Headers and a sliver of a 10 kB body, then silence: the server must keep serving others.
        slow.sendall(
            b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 10000\r\n\r\n{"input": "sl'
        )
        start = time.perf_counter()
        fast = httpx.post(f"{server}/v1/embeddings", json={"input": "hello", "model": "minilm"}, timeout=10)
        assert fast.status_code == 200 and time.perf_counter() - start < 5


def _chromium() -> tuple[str, str] | None:
    """Paths of Chromium and its driver, installing Debian's packages when this machine can."""
    names = (("chromium", "chromedriver"),)
    for browser, driver in names:
        if shutil.which(browser) and shutil.which(driver):
            return shutil.which(browser) or "", shutil.which(driver) or ""
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], env=env, timeout=600, capture_output=True
        )
        if shutil.which("chromium") and shutil.which("chromedriver"):
            return shutil.which("chromium") or "", shutil.which("chromedriver") or ""
    return None


def _browser(webdriver: Any, flags: Sequence[str] = ()) -> Any:
    """Headless Chromium under selenium, or a skip naming why there is none."""
    found = _chromium()
    if found is None:
        pytest.skip("no Chromium here, and Debian's chromium/chromium-driver could not be installed (needs apt + root)")
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900", *flags):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=found[1]))


def test_search_page_in_a_real_browser(server: str, artifacts: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = _browser(webdriver)
    target = papers(150)[105]["title"]  # SimCSE: Simple Contrastive Learning of Sentence Embeddings
    try:
        driver.get(server)
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#collection option"))
        Select(driver.find_element(By.ID, "collection")).select_by_value("papers")
        driver.find_element(By.ID, "query").send_keys("simple contrastive sentence embeddings SimCSE")
        driver.find_element(By.ID, "go").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "results in"))
        titles = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".hit h2")]
        driver.save_screenshot(str(artifacts / "search-page.png"))
        assert any(t.startswith(target) for t in titles[:3]), titles
        assert driver.find_elements(By.CSS_SELECTOR, ".hit .snippet")[0].text
        # built as the README builds it (title and abstract as the text, no title field): headed by the first line
        plain = [{"id": p["id"], "text": f"{p['title']}\n{p['text']}"} for p in papers(150)[100:110]]
        assert httpx.post(f"{server}/collections", json={"name": "plain"}).status_code == 201
        assert (
            httpx.post(f"{server}/collections/plain/documents", json={"documents": plain}, timeout=60).status_code
            == 200
        )
        driver.get(server)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#collection option[value=plain]"))
        Select(driver.find_element(By.ID, "collection")).select_by_value("plain")
        driver.find_element(By.ID, "query").send_keys("simple contrastive sentence embeddings SimCSE")
        driver.find_element(By.ID, "go").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "results in"))
        headed = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".hit h2")]
        assert any(t.startswith(target) for t in headed[:3]), headed
    finally:
        driver.quit()


def test_schemathesis_finds_no_server_errors(server: str, tmp_path: Path) -> None:
    """Last in this file: its stateful phase writes random documents into the served collections."""
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    command = [
        str(st),
        "run",
        f"{server}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "40",
        "--seed",
        "7",
        "--request-timeout",
        "60",
        "--no-color",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_docs_render_with_the_network_blocked(server: str, artifacts: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # every host name fails to resolve and only loopback is reachable: a CDN script could not load
    blocked = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9"]
    driver = _browser(webdriver, [*blocked, "--proxy-bypass-list=127.0.0.1"])
    try:
        driver.get(f"{server}/docs")
        WebDriverWait(driver, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 5)
        paths = {e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        driver.save_screenshot(str(artifacts / "docs-offline.png"))
        assert "/v1/embeddings" in paths and "/collections/{name}/search" in paths, paths
        scripts = [s.get_attribute("src") for s in driver.find_elements(By.TAG_NAME, "script")]
        assert all(src.startswith(server) for src in scripts if src), scripts
    finally:
        driver.quit()


def test_a_taken_port_fails_at_once_and_requests_are_logged(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    log = tmp_path / "server.log"
    with serve_process(["--data-dir", str(tmp_path / "data")], log=log) as url:
        assert httpx.get(f"{url}/v1/models").status_code == 200
        port = url.rsplit(":", 1)[1]
        start = time.perf_counter()
        second = subprocess.run(
            [sys.executable, "-m", "nestvec.cli.main", "serve", "--port", port], capture_output=True, text=True
        )
        assert second.returncode == 1 and f"Cannot listen on 127.0.0.1:{port}" in second.stderr
        assert "nestvec serve:" not in second.stderr and "Traceback" not in second.stderr
        assert time.perf_counter() - start < 20
        time.sleep(0.5)
        assert '"GET /v1/models HTTP/1.1" 200' in log.read_text()
