"""Fixtures for the netapp-ontap fidelity tests.

`cargo xtask test` starts `ontap-sim` over HTTPS and passes its address through the
environment: ONTAP_SIM_URL (https://127.0.0.1:PORT), ONTAP_SIM_CA (PEM of the simulator's
self-signed certificate), ONTAP_SIM_USER and ONTAP_SIM_PASSWORD.
"""

import os
import urllib.parse
import uuid

import pytest
from netapp_ontap import HostConnection, config


def sim_connection(poll_interval=0.1):
    """A HostConnection to the simulator, with certificate verification against its CA.

    Polls a running job every 0.1 s (netapp-ontap's default is 5 s) so that the suite is not
    mostly sleeping: the simulator's jobs last at most 200 ms."""
    try:
        url = os.environ["ONTAP_SIM_URL"]
        ca = os.environ["ONTAP_SIM_CA"]
    except KeyError as missing:
        raise RuntimeError(
            f"{missing} is not set: run these tests through `cargo xtask test python`"
        ) from None
    parsed = urllib.parse.urlsplit(url)
    return HostConnection(
        parsed.hostname,
        port=parsed.port or 443,
        username=os.environ.get("ONTAP_SIM_USER", "admin"),
        password=os.environ.get("ONTAP_SIM_PASSWORD", "netapp1!"),
        verify=ca,
        poll_interval=poll_interval,
        poll_timeout=60,
    )


@pytest.fixture(scope="session")
def conn():
    """The library-wide connection, as a netapp-ontap user would set it."""
    connection = sim_connection()
    config.CONNECTION = connection
    yield connection
    config.CONNECTION = None


@pytest.fixture
def unique():
    """A name prefix no other test (or earlier run against the same simulator) uses."""
    return f"py_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def requests_seen(conn):
    """(method, path, query) of every HTTP response the library received during the test."""
    seen = []

    def hook(response, *args, **kwargs):
        url = urllib.parse.urlsplit(response.request.url)
        seen.append((response.request.method, url.path, url.query))

    session = conn.session
    session.hooks["response"].append(hook)
    yield seen
    session.hooks["response"].remove(hook)
