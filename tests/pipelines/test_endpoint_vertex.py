"""The Vertex AI Endpoint adapter against the Vertex AI emulator, without serving anything:
finding or creating endpoints by name, and the smoke-test endpoints left behind."""

from __future__ import annotations

import pytest

from pipelines import backends
from pipelines.serving.vertex import ROLE_LABEL, SMOKE_TEST_OF_LABEL, EndpointError, VertexEndpoint
from tests.pipelines.conftest import Vertex

pytestmark = pytest.mark.slow


def test_an_endpoint_is_found_by_its_name_or_created_with_it_as_id(vertex: Vertex) -> None:
    missing = backends.endpoint("scoring")
    assert missing.describe().traffic == {} and missing.describe().resource_name == ""
    with pytest.raises(EndpointError, match="there is no endpoint named 'scoring'"):
        missing.predict([{"x": 1}])
    created = VertexEndpoint("scoring", backends.vertex_settings())._endpoint()  # as deploy() does
    assert created is not None and created.endswith("/endpoints/scoring")
    assert backends.endpoint("scoring").describe().resource_name == created
    assert vertex.sdk().Endpoint(created).display_name == "scoring"
    # An endpoint made in the console has a numeric id: found by its display name.
    console = vertex.sdk().Endpoint.create(display_name="Console Endpoint")
    assert backends.endpoint("Console Endpoint").describe().resource_name == console.resource_name
    vertex.sdk().Endpoint.create(display_name="Console Endpoint")
    with pytest.raises(EndpointError, match="2 endpoints have the display name 'Console Endpoint'"):
        backends.endpoint("Console Endpoint").describe()


def test_a_smoke_test_endpoint_left_behind_is_deleted_by_the_next_smoke_test(vertex: Vertex) -> None:
    real = backends.endpoint("churn-live")
    assert isinstance(real, VertexEndpoint)
    left = real.smoke_test_endpoint("3")
    assert left.name.startswith("churn-live-smoke-v3-")
    assert left.labels == {ROLE_LABEL: "smoke-test", SMOKE_TEST_OF_LABEL: "churn-live"}
    left._endpoint()  # created (as its deploy does), then the task that made it was killed
    other = backends.endpoint("other-live")
    assert isinstance(other, VertexEndpoint)
    other.smoke_test_endpoint("1")._endpoint()

    def smoke_tests() -> list[str]:
        found = vertex.sdk().Endpoint.list(filter=f'labels.{ROLE_LABEL}="smoke-test"')
        return sorted(e.display_name for e in found)

    assert len(smoke_tests()) == 2
    real.smoke_test_endpoint("4")  # younger than an hour: kept
    assert left.name in smoke_tests()
    real.smoke_test_endpoint("4", stale_after=0)
    assert left.name not in smoke_tests() and len(smoke_tests()) == 1  # another endpoint's is kept
