"""Route templates as ASP.NET (and so the Functions host) reads them; no processes needed."""
from __future__ import annotations

import pytest

from local.host.routes import Route
from local.host.settings import HostError

pytestmark = [pytest.mark.host, pytest.mark.timeout(30)]


def test_parameters_constraints_optional_and_catch_all_segments_match_like_aspnet():
    assert Route("items/{id:int}").match("/Items/42/") == {"id": "42"}
    assert Route("items/{id:int}").match("/items/x") is None
    assert Route("items/{id:int:min(10)}").match("/items/9") is None
    assert Route("a/{x?}").match("/a") == {}
    assert Route("a/{x=7}").match("/a") == {"x": "7"}
    assert Route("files/{*path}").match("/files/a/b.txt") == {"path": "a/b.txt"}
    assert Route("{name}.{ext}").match("/report.pdf") == {"name": "report", "ext": "pdf"}
    assert Route("r/{code:regex(^[a-z]{{2}}$)}").match("/r/ab") == {"code": "ab"}
    assert Route("r/{code:regex(^[a-z]{{2}}$)}").match("/r/abc") is None
    assert Route("g/{id:guid}").match("/g/6f9619ff-8b86-d011-b42d-00cf4fc964ff") is not None


def test_literal_segments_win_over_parameters_and_catch_alls_come_last():
    routes = [Route("items/{*rest}"), Route("items/{id}"), Route("items/{id:int}"), Route("items/new")]
    ordered = [r.template for r in sorted(routes, key=lambda r: r.precedence)]
    assert ordered == ["items/new", "items/{id:int}", "items/{id}", "items/{*rest}"]


def test_a_bad_template_is_refused():
    with pytest.raises(HostError):
        Route("items/{id:nosuchconstraint}")
    with pytest.raises(HostError):
        Route("{*rest}/more")
