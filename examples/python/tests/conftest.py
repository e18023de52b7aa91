"""Fixtures: the ontap-sim binary over HTTPS (its CA written to a file, the password in a
file), a connected `kvmstor.Ontap`, and the simulator's admin endpoint for faults."""

import base64
import json
import os
import pathlib
import shutil
import ssl
import subprocess
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
SIM_BIN = os.environ.get("KVMSTOR_SIM_BIN", str(ROOT / "target" / "debug" / "ontap-sim"))
PASSWORD = "py-test-Pa55"


class Sim:
    """A running ontap-sim process."""

    def __init__(self, tmp: pathlib.Path, client_ca=None):
        self.tmp = tmp
        self.ca = tmp / "ca.pem"
        self.password_file = tmp / "password"
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        extra = [] if client_ca is None else ["--client-ca", str(client_ca)]
        self.proc = subprocess.Popen(
            [SIM_BIN, "--listen", "127.0.0.1:0", "--cert-out", str(self.ca),
             "--password-file", str(self.password_file), "--job-ms", "5", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        assert line.startswith("listening on "), f"ontap-sim said {line!r}"
        self.url = line.removeprefix("listening on ")
        self._ssl = ssl.create_default_context(cafile=str(self.ca))

    def admin(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, context=self._ssl) as resp:
            text = resp.read().decode()
            return json.loads(text) if text else None

    def fault(self, **fault):
        self.admin("POST", "/__sim/faults", fault)

    def clear_faults(self):
        self.admin("DELETE", "/__sim/faults")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def sim(tmp_path_factory):
    if not os.path.exists(SIM_BIN):
        pytest.fail(f"{SIM_BIN} is missing: run `cargo build -p ontap-sim` first")
    s = Sim(tmp_path_factory.mktemp("sim"))
    yield s
    s.stop()


@pytest.fixture
def ontap(sim):
    import kvmstor
    sim.clear_faults()
    return kvmstor.connect(sim.url, password_file=str(sim.password_file), ca_file=str(sim.ca))


@pytest.fixture
def hosts_root(tmp_path):
    root = tmp_path / "hosts"
    root.mkdir()
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="session")
def client_pki(tmp_path_factory):
    """A client CA and a certificate for CN=admin it signed, made with the openssl CLI:
    {"ca", "cert", "key"} paths; also "other_cert"/"other_key", signed by another CA."""
    d = tmp_path_factory.mktemp("pki")
    out = {}
    for tag in ("", "other_"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", f"{tag}ca.key", "-out", f"{tag}ca.pem", "-days", "2",
                 "-subj", f"/CN=kvmstor py {tag}test CA", cwd=d)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{tag}client.key", "-out", f"{tag}client.csr",
                 "-subj", "/CN=admin", cwd=d)
        (d / "ext.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        _openssl("x509", "-req", "-in", f"{tag}client.csr", "-CA", f"{tag}ca.pem",
                 "-CAkey", f"{tag}ca.key", "-CAcreateserial", "-out", f"{tag}client.pem",
                 "-days", "2", "-extfile", "ext.cnf", cwd=d)
        out[f"{tag}ca"] = d / f"{tag}ca.pem"
        out[f"{tag}cert"] = d / f"{tag}client.pem"
        out[f"{tag}key"] = d / f"{tag}client.key"
    return out


@pytest.fixture(scope="session")
def cert_sim(tmp_path_factory, client_pki):
    """A second ontap-sim that also takes client certificates signed by client_pki's CA."""
    s = Sim(tmp_path_factory.mktemp("cert-sim"), client_ca=client_pki["ca"])
    yield s
    s.stop()
