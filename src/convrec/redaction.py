"""Credentials never leave the process: masked before anything is written or printed.

A tracking URI or database URL typed with a password in it (`http://user:secret@host`), or a
config key named like a credential (`db_password`, `api_token`), would otherwise reach every
reader of the MLflow store (params, tags, config.yaml), of `results/` and of the logs. The lab
masks such values wherever it writes a config, its overrides or a message; the process itself
keeps the real value, so the connection still works. Pass credentials through the environment
(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD) and they are never in a config at all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# A key is a credential when one of its words (split at _ - . and case changes) is one of these:
# "token" alone, so that `tokenizer` or `max_tokens` stay readable.
_SECRET_WORDS = {"password", "passwd", "pwd", "secret", "token", "apikey", "credential",
                 "credentials", "passphrase"}  # fmt: skip
_SECRET_PAIRS = {("api", "key"), ("access", "key"), ("secret", "key"), ("private", "key"),
                 ("auth", "key")}  # fmt: skip
# scheme://userinfo@ : the userinfo of any URL (user:password, or a bare token)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s'\"]+)@")
# key=value or key: value, as in overrides (`db.password=x`), query strings (`?token=x`) and
# messages; the key is judged by is_secret_key. The value is looked at, not consumed, so that
# scanning goes on inside it (`uri=https://h/?token=x`).
_ASSIGNMENT = re.compile(
    r"(?P<key>[A-Za-z_][\w.\-]*)(?P<sep>\s*[=:]\s*)(?=(?P<value>[^\s&,;'\"\]}]+))"
)


def _words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)  # apiKey -> api Key
    return [w for w in re.split(r"[\s_.\-+~]+", spaced.lower()) if w]


def is_secret_key(key: str) -> bool:
    """Whether a config key (or its last dotted part) names a credential."""
    words = _words(key.rsplit(".", 1)[-1])
    return bool(_SECRET_WORDS.intersection(words)) or any(
        pair in _SECRET_PAIRS for pair in zip(words, words[1:], strict=False)
    )


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match["userinfo"].partition(":")
    # user:password keeps the user (who connected is not a secret); a lone part may be a token
    return f"{match['scheme']}{user}:{MASK}@" if colon else f"{match['scheme']}{MASK}@"


def _mask_assignments(text: str) -> str:
    parts, done = [], 0
    for match in _ASSIGNMENT.finditer(text):
        if match.start() < done or match["value"] == MASK or not is_secret_key(match["key"]):
            continue
        parts += [text[done : match.end()], MASK]
        done = match.end() + len(match["value"])
    return "".join([*parts, text[done:]])


def redact_text(text: str) -> str:
    """`text` with the userinfo of every URL and the value of every credential-named
    `key=value` masked; the rest unchanged."""
    if not isinstance(text, str):
        return text
    return _mask_assignments(_USERINFO.sub(_mask_userinfo, text))


def redact(tree: Any, key: str = "") -> Any:
    """A copy of a config tree (mappings, lists, scalars) with credentials masked: the whole
    value under a credential-named key, URLs' userinfo and `key=value` secrets in strings."""
    if isinstance(tree, Mapping):
        return {k: redact(v, str(k)) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [redact(v) for v in tree]
    if key and tree not in (None, "") and is_secret_key(key):
        return MASK
    return redact_text(tree) if isinstance(tree, str) else tree


_installed = False


def redact_logging() -> None:
    """Every log record, whoever creates it (Hydra's launcher listing a sweep's overrides,
    MLflow, Optuna), is masked before any handler sees it. A record factory, because Hydra
    replaces the handlers (and so their filters) each time it configures logging."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: leave it to logging's own report
            return record
        masked = redact_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return record

    logging.setLogRecordFactory(masked_record)
    _installed = True
