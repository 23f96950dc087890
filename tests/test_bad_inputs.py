"""Bad inputs at the library and the HTTP server: clear errors and 4xx only (reliability/badinputs.py
runs these and the CLI's; its figures are in RELIABILITY.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="nestvec serve needs the 'serve' extra")

import nestvec
from reliability.badinputs import http_cases, library_cases
from tests.conftest import paper_docs
from tests.serving import serve_process


def test_every_bad_input_gets_a_clear_error_and_no_5xx(tmp_path: Path) -> None:
    path = tmp_path / "papers"
    with nestvec.Collection.create(path, bm25=True) as collection:
        collection.add(paper_docs(30))
    library = library_cases(path)
    assert len(library) > 50 and [o for o in library if o.result != "clear-error"] == []
    with serve_process([str(path)], log=tmp_path / "server.log") as url:
        http = http_cases(url)
    assert len(http) > 60 and [o for o in http if o.failed] == []
    assert {o.result for o in http} <= {"200", "400", "404", "405", "409", "413", "422"}
    assert nestvec.check_collection(path, model=False).ok
