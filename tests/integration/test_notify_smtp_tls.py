"""`mailer.send` against a real SMTP server (aiosmtpd) with TLS and a login, as SMTP_SECURITY says.

The server's certificate is made here, self-signed for 127.0.0.1; the mailer trusts it the way
a deployment trusts a private CA: `SSL_CERT_FILE`, which `ssl.create_default_context()` honours.
Two servers: STARTTLS on a plain port (required before anything else), and implicit TLS; both
ask for a login. (aiosmtpd counts only STARTTLS as TLS when it decides whether to offer AUTH, so
the implicit-TLS one is told not to mind: every byte of its connections is encrypted anyway.)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.notify import mailer
from services.notify.emails import RenderedEmail
from shared.settings import Settings
from tests.servers import Recorder, free_port

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

HOST = "127.0.0.1"
USER, PASSWORD = "portail", "mot-de-passe-du-relais"


# --- a certificate of our own --------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files in `folder`."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    try:
        _with_cryptography(cert, key)
    except ImportError:
        _with_openssl(cert, key)
    return cert, key


def _with_cryptography(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp test")])
    now = dt.datetime.now(UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _with_openssl(cert_path: Path, key_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("neither the cryptography package nor openssl to make a certificate")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key_path), "-out", str(cert_path), "-days", "1", "-subj", "/CN=smtp test",
         "-addext", f"subjectAltName=DNS:localhost,IP:{HOST}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
         "-addext", "extendedKeyUsage=serverAuth"],
        check=True,
        capture_output=True,
    )  # fmt: skip


# --- the servers ---------------------------------------------------------------------------------


@dataclass
class LoginRecorder(Recorder):
    """tests.servers' Recorder, keeping who logged in for each message and whether it came over TLS."""

    senders: list[tuple[str | None, bool]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        login = session.auth_data.login.decode() if session.authenticated else None
        self.senders.append((login, server.transport.get_extra_info("ssl_object") is not None))
        return await super().handle_DATA(server, session, envelope)


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@dataclass
class TlsServer:
    security: str  # as SMTP_SECURITY says: "starttls" or "ssl"
    port: int
    recorder: LoginRecorder


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@contextmanager
def tls_server(security: str, certificate: tuple[Path, Path]) -> Iterator[TlsServer]:
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(*certificate)
    recorder, port = LoginRecorder(), free_port()
    options = {"authenticator": authenticator, "auth_required": True}
    if security == "starttls":
        controller = Controller(
            recorder, hostname=HOST, port=port, tls_context=server_side, require_starttls=True, **options
        )
    else:
        controller = Controller(
            recorder, hostname=HOST, port=port, ssl_context=server_side, auth_require_tls=False, **options
        )
    controller.start()
    try:
        yield TlsServer(security, port, recorder)
    finally:
        controller.stop()


@pytest.fixture(params=["starttls", "ssl"])
def server(request, certificate, monkeypatch) -> Iterator[TlsServer]:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with tls_server(request.param, certificate) as running:
        yield running


def settings_for(server: TlsServer, **changes) -> Settings:
    env = {
        "SMTP_HOST": HOST,
        "SMTP_PORT": str(server.port),
        "SMTP_SECURITY": server.security,
        "SMTP_USERNAME": USER,
        "SMTP_PASSWORD": PASSWORD,
    }
    return replace(Settings.from_env(env), **changes)


def message(to: str = "fleur.f@example.fr"):
    return mailer.build_message(
        RenderedEmail("Activez votre compte", "Bonjour", "<p>Bonjour</p>"),
        to=to,
        mail_from=Settings().mail_from,
        now=datetime.now(UTC),
    )


# --- the tests -----------------------------------------------------------------------------------


def test_delivers_over_tls_after_logging_in(server):
    mailer.send(message(), settings_for(server))
    (received,) = server.recorder.wait_for(1, timeout=10)
    assert received["To"] == "fleur.f@example.fr" and received["Subject"] == "Activez votre compte"
    assert server.recorder.senders == [(USER, True)]


def test_a_wrong_password_sends_nothing_and_is_worth_a_retry(server):
    """The relay refuses the login (535): the email is not refused for good, since a corrected
    SMTP_PASSWORD sends it on a later try (see mailer's docstring)."""
    with pytest.raises(mailer.TemporaryFailure) as failure:
        mailer.send(message(), settings_for(server, smtp_password="pas-le-bon"))
    assert "SMTPAuthenticationError" in str(failure.value)
    assert server.recorder.messages == []


def test_a_certificate_the_mailer_does_not_trust_sends_nothing(server, monkeypatch, tmp_path):
    other, _ = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    with pytest.raises(mailer.TemporaryFailure) as failure:
        mailer.send(message(), settings_for(server))
    assert isinstance(failure.value.__cause__, ssl.SSLCertVerificationError)
    assert server.recorder.messages == []


def test_no_tls_to_a_server_that_requires_it_sends_nothing(certificate):
    with tls_server("starttls", certificate) as running:
        with pytest.raises(mailer.TemporaryFailure):
            mailer.send(message(), settings_for(running, smtp_security="none"))
        assert running.recorder.messages == []


def test_no_smtp_host_means_the_local_mail_catcher_without_tls_or_login():
    recorder, port = LoginRecorder(), free_port()
    controller = Controller(recorder, hostname=HOST, port=port)
    controller.start()
    try:
        mailer.send(message(), Settings.from_env({"SMTP_PORT": str(port)}))
    finally:
        controller.stop()
    assert len(recorder.messages) == 1 and recorder.senders == [(None, False)]
