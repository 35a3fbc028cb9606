"""Run the production config (deploy/nginx.conf + deploy/gunicorn.conf.py) on loopback ports.

For tests/test_nginx_deploy.py and bench/observatory.py: the same files as production, with only
the host-specific values swapped (paths, ports, certificate), so what is tested is what is deployed.
Everything listens on 127.0.0.1, lives in a temporary folder and stops with the context manager.
`caddy_and_app()` does the same for deploy/Caddyfile (the server recipe's front), with Caddy's own
internal CA instead of Let's Encrypt. `sshd()` is the "server" that deploy/deploy.sh publishes to in
tests/test_deploy.py and bench/deploy_time.py.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
HOST = "www.voorbeeld-coaching.be"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Terminate, and kill what does not stop within ten seconds."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def wait_for_port(port: int, proc: subprocess.Popen, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {seconds:.0f} s")


def self_signed(folder: Path, names: tuple[str, ...] = (HOST, "localhost"), ips: tuple[str, ...] = ("127.0.0.1",)
                ) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate signed by it: (ca.pem, cert.pem, key.pem)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.pem", "key.pem", "req.csr", "cert.pem"))
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=coach local test CA",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}", "-keyout", str(key), "-out", str(csr))
    san = ",".join([*(f"DNS:{n}" for n in names), *(f"IP:{i}" for i in ips)])
    ext = folder / "san.cnf"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
        "-extfile", str(ext), "-out", str(cert))
    return ca, cert, key


def render_site_conf(site_dir: Path, app_port: int, http_port: int, https_port: int, cert: Path, key: Path,
                     log_dir: Path) -> str:
    """deploy/nginx.conf with this machine's paths and ports; fails loudly if the file changed shape."""
    text = (DEPLOY / "nginx.conf").read_text()
    swaps = [
        ("/srv/coach/site", str(site_dir)),
        ("/srv/coach/deploy", str(DEPLOY)),
        ("server 127.0.0.1:8001;", f"server 127.0.0.1:{app_port};"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
        ("/etc/letsencrypt/live/www.voorbeeld-coaching.be/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/www.voorbeeld-coaching.be/privkey.pem", str(key)),
        ("/var/log/nginx/coach.access.log", str(log_dir / "access.log")),
        ("/var/www/acme", str(log_dir / "acme")),
    ]
    for old, new in swaps:
        if old not in text:
            raise AssertionError(f"deploy/nginx.conf no longer contains {old!r}: update deploy/local.py")
        text = text.replace(old, new)
    if https_port != 443:  # the HTTP server redirects to the standard port; locally it may be another
        text = text.replace(f"https://{HOST}$request_uri", f"https://{HOST}:{https_port}$request_uri")
    return text


def main_conf(prefix: Path, site_conf: Path) -> str:
    """The http block Debian's /etc/nginx/nginx.conf would provide, in a private prefix."""
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                          "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\n"
            f"events {{ worker_connections 256; }}\nhttp {{\n    include /etc/nginx/mime.types;\n"
            f"    default_type application/octet-stream;\n{temp}\n    include {site_conf};\n}}\n")


@dataclass
class Deployment:
    https_url: str
    http_url: str
    https_port: int
    http_port: int
    ca: Path
    prefix: Path


@contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int = 1, log: Path | None = None,
             wsgi: str | None = None) -> Iterator[None]:
    """The app under gunicorn with deploy/gunicorn.conf.py, bound to a loopback port; `wsgi` names
    another entry point (`leadform.wsgi:with_site()`, as `make run` serves)."""
    bin_dir = Path(sys.executable).parent
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    command = [str(bin_dir / "gunicorn"), "-c", str(DEPLOY / "gunicorn.conf.py"), *([wsgi] if wsgi else [])]
    proc = subprocess.Popen(command, cwd=ROOT,
                            env={**os.environ, **env, "GUNICORN_BIND": f"127.0.0.1:{port}",
                                 "GUNICORN_WORKERS": str(workers)}, stdout=out, stderr=out)
    try:
        wait_for_port(port, proc, "gunicorn", 60)
        yield
    finally:
        stop(proc)
        if log:
            out.close()


@contextmanager
def nginx_and_app(site_dir: Path, workdir: Path, app_env: dict[str, str], standard_ports: bool = False
                  ) -> Iterator[Deployment]:
    """nginx (deploy/nginx.conf) in front of gunicorn (deploy/gunicorn.conf.py), both on loopback.

    `standard_ports` listens on 80 and 443, for a private network namespace (bench/observatory.py).
    """
    if not Path(NGINX).exists():
        raise RuntimeError("nginx not found: apt-get install -y nginx")
    prefix = workdir / "nginx"
    (prefix / "acme").mkdir(parents=True, exist_ok=True)
    ca, cert, key = self_signed(workdir / "tls")
    app_port = free_port()
    http_port, https_port = (80, 443) if standard_ports else (free_port(), free_port())
    site_conf = prefix / "site.conf"
    site_conf.write_text(render_site_conf(site_dir, app_port, http_port, https_port, cert, key, prefix))
    (prefix / "nginx.conf").write_text(main_conf(prefix, site_conf))
    env = {"LEADFORM_SITE_DIR": str(site_dir), "LEADFORM_PUBLIC_HTTPS": "true",
           "LEADFORM_INSTANCE_PATH": str(workdir / "instance"), **app_env}
    with gunicorn(env, app_port, log=workdir / "gunicorn.log"):
        conf = str(prefix / "nginx.conf")
        check = subprocess.run([NGINX, "-t", "-q", "-p", str(prefix), "-c", conf], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the config:\n{check.stderr}")
        proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", conf, "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_port(https_port, proc, "nginx")
            wait_for_port(http_port, proc, "nginx")
            yield Deployment(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", https_port,
                             http_port, ca, prefix)
        finally:
            stop(proc)


@dataclass
class SSHServer:
    """A private sshd on a loopback port that accepts one throwaway key for the current user."""
    host: str     # user@127.0.0.1, for DEPLOY_HOST
    ssh: str      # the ssh command with its options, for DEPLOY_SSH
    port: int


@contextmanager
def sshd(workdir: Path) -> Iterator[SSHServer]:
    """Debian's /usr/sbin/sshd with its own config, host key and client key pair in `workdir`."""
    binary = Path("/usr/sbin/sshd")
    if not binary.exists():
        raise RuntimeError("sshd not found: apt-get install -y openssh-server")
    workdir.mkdir(parents=True, exist_ok=True)
    keygen = lambda path: subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],  # noqa: E731
                                         check=True, capture_output=True)
    keygen(workdir / "host_key")
    keygen(workdir / "client_key")
    (workdir / "authorized_keys").write_text((workdir / "client_key.pub").read_text())
    port = free_port()
    user = getpass.getuser()
    (workdir / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {workdir / 'host_key'}\nPidFile {workdir / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}\nPasswordAuthentication no\n"
        f"KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        f"AllowUsers {user}\nLogLevel ERROR\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation folder
    log = open(workdir / "sshd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(binary), "-D", "-e", "-f", str(workdir / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for_port(port, proc, "sshd")
        ssh = (f"ssh -p {port} -i {workdir / 'client_key'} -o IdentitiesOnly=yes -o BatchMode=yes "
               f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={workdir / 'known_hosts'}")
        yield SSHServer(f"{user}@127.0.0.1", ssh, port)
    finally:
        stop(proc)
        log.close()


CADDY = shutil.which("caddy") or "/usr/bin/caddy"


def wait_for_certificates(port: int, root: Path, names: tuple[str, ...], proc: subprocess.Popen,
                          seconds: float = 60.0) -> None:
    """Caddy issues its certificates after it starts listening: wait until each name's handshake passes."""
    deadline = time.monotonic() + seconds
    pending = list(names)
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"caddy exited with {proc.returncode}")
        try:
            context = ssl.create_default_context(cafile=str(root))
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock, \
                    context.wrap_socket(sock, server_hostname=pending[0]):
                pending.pop(0)
                continue
        except (OSError, ssl.SSLError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"caddy gave no valid certificate for {pending[0]} in {seconds:.0f} s") from None
            time.sleep(0.2)


@contextmanager
def caddy_and_app(site_dir: Path, workdir: Path, app_env: dict[str, str]) -> Iterator[Deployment]:
    """Caddy (deploy/Caddyfile, unchanged) in front of gunicorn serving `leadform.wsgi:with_site()`, as
    coach-leadform.service does. Only global options are added: loopback ports, certificates from
    Caddy's internal CA (`local_certs`, trusted through Deployment.ca, never installed system-wide)."""
    if not Path(CADDY).exists():
        raise RuntimeError("caddy not found: apt-get install -y caddy")
    prefix = workdir / "caddy"
    prefix.mkdir(parents=True, exist_ok=True)
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    config = prefix / "Caddyfile"
    config.write_text(f"{{\n\thttp_port {http_port}\n\thttps_port {https_port}\n\tlocal_certs\n\tskip_install_trust\n"
                      f"\tadmin off\n\tstorage file_system {prefix / 'data'}\n}}\n\n"
                      f"import {DEPLOY / 'Caddyfile'}\n")
    env = {"LEADFORM_SITE_DIR": str(site_dir), "LEADFORM_PUBLIC_HTTPS": "true", "LEADFORM_PROXY_FIX_X_FOR": "1",
           "LEADFORM_INSTANCE_PATH": str(workdir / "instance"), **app_env}
    caddy_env = {**os.environ, "HOME": str(prefix), "XDG_DATA_HOME": str(prefix / "data"),
                 "XDG_CONFIG_HOME": str(prefix / "config"), "COACH_DOMAIN": HOST,
                 "COACH_BARE_DOMAIN": HOST.removeprefix("www."), "COACH_APP_PORT": str(app_port)}
    with gunicorn(env, app_port, log=workdir / "gunicorn.log", wsgi="leadform.wsgi:with_site()"):
        log = open(prefix / "caddy.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([CADDY, "run", "--adapter", "caddyfile", "--config", str(config)], cwd=prefix,
                                env=caddy_env, stdout=log, stderr=log)
        try:
            wait_for_port(https_port, proc, "caddy", 60)
            wait_for_port(http_port, proc, "caddy", 60)
            root = prefix / "data" / "pki" / "authorities" / "local" / "root.crt"
            wait_for_certificates(https_port, root, (HOST, HOST.removeprefix("www.")), proc)
            yield Deployment(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", https_port,
                             http_port, root, prefix)
        finally:
            stop(proc)
            log.close()
