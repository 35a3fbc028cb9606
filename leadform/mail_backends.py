"""Where mail goes: .eml files (the embedded default) or an SMTP server.

A backend raises `TemporaryFailure` (try again later) or `PermanentFailure`
(give up); the outbox decides what to do with each.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

log = logging.getLogger("leadform.mail")
LINK = re.compile(r"https?://\S+/download/\S+")


class TemporaryFailure(Exception):
    """The server may accept it later: 4xx, refused connection, timeout."""


class PermanentFailure(Exception):
    """The server refused it for good: 5xx."""


class FileBackend:
    """Writes each mail as an .eml file; prints download links so `make run` needs no mail server."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def send(self, message: EmailMessage, outbox_id: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{outbox_id:08d}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(message))
        tmp.replace(path)
        text = message.get_body(("plain",))
        for link in LINK.findall(text.get_content() if text else ""):
            print(f"[mail {outbox_id}] download link: {link}", flush=True)
        log.info("mail written outbox_id=%s file=%s", outbox_id, path.name)


class SMTPBackend:
    def __init__(self, host: str, port: int, security: str, user: str | None, password: str | None,
                 timeout: float) -> None:
        self.host, self.port, self.security = host, port, security
        self.user, self.password, self.timeout = user, password, timeout

    def send(self, message: EmailMessage, outbox_id: int) -> None:
        try:
            if self.security == "tls":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _by_code(min(codes), "recipient refused") from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, exc.smtp_error.decode("utf-8", "replace")[:200]) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}"[:300]) from None
        if refused:
            raise _by_code(min(code for code, _ in refused.values()), "recipient refused")
        log.info("mail sent outbox_id=%s", outbox_id)


def _by_code(code: int, text: str) -> Exception:
    if 400 <= code < 500:
        return TemporaryFailure(f"{code} {text}")
    return PermanentFailure(f"{code} {text}")


def from_config(config: dict) -> FileBackend | SMTPBackend:
    if config["MAIL_BACKEND"] == "smtp":
        return SMTPBackend(config["SMTP_HOST"], int(config["SMTP_PORT"]), config["SMTP_SECURITY"],
                           config["SMTP_USER"], config["SMTP_PASSWORD"], float(config["SMTP_TIMEOUT"]))
    if config["MAIL_BACKEND"] == "file":
        return FileBackend(config["MAIL_DIR"])
    raise RuntimeError(f"LEADFORM_MAIL_BACKEND must be 'file' or 'smtp', not {config['MAIL_BACKEND']!r}")
