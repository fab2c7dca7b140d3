"""Settings: the TOML file validated into one frozen object, and secrets read when needed.

The only module that reads configuration files and the environment. Secrets are never part
of the settings: `read_secret` fetches one at login time and wraps it in a `Secret` whose
repr hides the value, so a settings object can be logged, compared and shown safely.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import subprocess
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import structlog
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from govfeed.decide import Agency, TrustPolicy
from govfeed.errors import ConfigError

log = structlog.get_logger(__name__)

CONFIG_ENV = "GOVFEED_CONFIG"
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"  # set by systemd for LoadCredential=
DEFAULT_DATABASE = Path("govfeed.db")
# From domains that claim a government sender (a domain or any name under it).
DEFAULT_SENDER_DOMAINS = (
    "govdelivery.com",
    "public.govdelivery.com",
    "service.govdelivery.com",
    "granicus.com",
    "defense.gov",
    "war.gov",
    "usdoj.gov",
    "hhs.gov",
    "cisa.gov",
    "healthcare.gov",
)
SECRET_KEYS = (
    "password_file",
    "password_env",
    "credential",
    "oauth2_token_command",
    "oauth2_token_file",
)
DEFAULT_PORTS = {"imaps": 993, "starttls": 143, "none": 143}

Policy = Literal["publish", "quarantine", "reject"]
Security = Literal["imaps", "starttls", "none"]
SecretKind = Literal["password", "oauth2"]


def _relative_to_config(value: Path, info: ValidationInfo) -> Path:
    """Relative paths in a config file are relative to the file's folder, as under systemd
    the working directory is `/` and means nothing to whoever wrote the file."""
    value = value.expanduser()
    base = info.context.get("base") if isinstance(info.context, dict) else None
    return value if value.is_absolute() or base is None else base / value


ConfigPath = Annotated[Path, AfterValidator(_relative_to_config)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseSettings(_Model):
    path: ConfigPath = DEFAULT_DATABASE
    # A group that may read the database (0640 instead of 0600), e.g. the site's user's.
    group: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_-]*[$]?$", max_length=32)


class ReplicationSettings(_Model):
    """`[replication]`: the Litestream set-up `govfeed status` checks (docs/deploy.md)."""

    # The file `litestream replicate -config` runs with; it must list the database's path.
    litestream_config: ConfigPath
    # Degraded when the replica misses writes older than this (seconds).
    max_lag_seconds: float = Field(default=600, gt=0)
    litestream: str = "litestream"  # the program: a path, or a name on PATH or beside python


class AuthenticationSettings(_Model):
    """How much to trust a message's claim to come from a government sender."""

    trusted_authserv_ids: tuple[str, ...] = ()
    unauthenticated: Policy = "quarantine"
    sender_domains: tuple[str, ...] = DEFAULT_SENDER_DOMAINS
    dkim_verify: bool = False  # also verify DKIM signatures here (DNS lookups per message)

    @field_validator("trusted_authserv_ids", "sender_domains")
    @classmethod
    def _lower(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(value.strip().lower() for value in values if value.strip())


class AgencySettings(_Model):
    """One `[[agencies]]` entry of the registry: who an agency is, and which senders are its own.

    A release carries a registered agency's name only when its authenticated sender is one
    of `account_codes` (GovDelivery accounts) or `senders` (addresses, or domains with every
    name under them); see decide.py.
    """

    name: str = Field(min_length=1, max_length=200)
    aliases: tuple[str, ...] = ()
    account_codes: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()
    # How often the agency publishes, for `govfeed status`: e.g. 31 (hours); none = no alert.
    expected_every_hours: float | None = Field(default=None, gt=0)

    @field_validator("account_codes")
    @classmethod
    def _codes(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        codes = tuple(value.strip().upper() for value in values)
        for code in codes:
            if not re.fullmatch(r"[A-Z0-9_]{2,40}", code):
                raise ValueError(f"{code!r} is no GovDelivery account code (letters, digits, _)")
        return codes

    @field_validator("senders")
    @classmethod
    def _senders(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        senders = tuple(value.strip().lower().rstrip(".") for value in values)
        for sender in senders:
            if not re.fullmatch(r"(?:[a-z0-9._%+-]+@)?[a-z0-9-]+(?:\.[a-z0-9-]+)+", sender):
                raise ValueError(f"{sender!r} is neither an address nor a domain")
        return senders


# The built-in registry: a config's [[agencies]] add to it, and an entry with the same name
# replaces the built-in one. DoD signs as the Department of War since September 2025.
DEFAULT_AGENCIES = (
    AgencySettings(
        name="U.S. Department of Defense",
        aliases=(
            "U.S. Department of War",
            "US Department of War",
            "Department of War",
            "US Department of Defense",
            "Department of Defense",
            "DoD",
            "DOD",
        ),
        account_codes=("USDOD",),
        senders=("usdod@public.govdelivery.com", "defense.gov", "war.gov"),
        expected_every_hours=None,
    ),
)


class MailboxSettings(_Model):
    """One `[[mailboxes]]` entry: an IMAP account and the folders to read from it."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)
    host: str = Field(min_length=1)
    # Declared before `security` so the `security` check can see it.
    allow_plaintext: bool = False
    security: Security = "imaps"
    port: int = Field(default=993, ge=1, le=65535)
    ca_file: ConfigPath | None = None
    username: str = Field(min_length=1)
    password_file: ConfigPath | None = None
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    credential: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.@-]+$")
    oauth2_token_command: tuple[str, ...] | None = Field(default=None, min_length=1)
    oauth2_token_file: ConfigPath | None = None
    folders: tuple[str, ...] = Field(default=("INBOX",), min_length=1)
    poll_interval: int = Field(default=300, ge=10)
    batch_size: int = Field(default=200, ge=1, le=5000)
    timeout: float = Field(default=60, gt=0, le=3600)
    # A bigger message is recorded as failed ("too large"), its headers kept, never read
    # whole; also the most any one server answer may carry. 1 KiB .. 1 GiB.
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, le=1 << 30)
    post_action: str = "none"
    since: date | None = None
    idle: bool = True
    # Connections govfeed may hold to this server at once: watching, polling and syncing
    # alike (servers cap them per user: Dovecot 10 per user and address, Gmail 15,
    # Microsoft 365 about 20, and the user's own mail clients count too).
    max_connections: int = Field(default=3, ge=1, le=50)
    # Folders no IDLE or NOTIFY connection watches are checked this often (LIST-STATUS or
    # STATUS on the poll connection); only those whose numbers moved are synced.
    sweep_interval: int = Field(default=60, ge=1, le=3600)
    # IDLE/NOTIFY renewed and quiet connections sent NOOP at least this often, each with a
    # reply deadline (`timeout`): NAT gateways forget a silent flow after 350 s.
    keepalive_interval: int = Field(default=240, ge=1, le=1740)
    trusted_authserv_ids: tuple[str, ...] | None = None
    unauthenticated: Policy | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and "port" not in data:
            port = DEFAULT_PORTS.get(str(data.get("security", "imaps")))
            if port is not None:
                data = {**data, "port": port}
        return data

    @field_validator("security")
    @classmethod
    def _plaintext_allowed(cls, value: Security, info: ValidationInfo) -> Security:
        if value == "none" and not info.data.get("allow_plaintext", False):
            raise ValueError(
                "'none' sends the password and the mail unencrypted; "
                "set allow_plaintext = true on this mailbox to allow it"
            )
        return value

    @field_validator("folders")
    @classmethod
    def _folders(cls, folders: tuple[str, ...]) -> tuple[str, ...]:
        if any(not folder.strip() for folder in folders):
            raise ValueError("a folder name is empty")
        if len(set(folders)) != len(folders):
            raise ValueError("a folder is listed twice")
        return folders

    @field_validator("oauth2_token_command")
    @classmethod
    def _command(cls, argv: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if argv is not None and not argv[0].strip():
            raise ValueError("the program name is empty")
        return argv

    @field_validator("post_action")
    @classmethod
    def _post_action(cls, value: str) -> str:
        if value in ("none", "seen") or (value.startswith("move:") and value[5:].strip()):
            return value
        raise ValueError("must be none, seen or move:<folder>")

    @model_validator(mode="after")
    def _one_secret(self) -> MailboxSettings:
        found = [key for key in SECRET_KEYS if getattr(self, key) is not None]
        if len(found) != 1:
            raise ValueError(
                f"set exactly one of {', '.join(SECRET_KEYS)} "
                f"(found {' and '.join(found) or 'none'})"
            )
        if self.move_target is not None and self.move_target in self.folders:
            raise ValueError(f"post_action moves mail into {self.move_target}, a folder it reads")
        return self

    @property
    def move_target(self) -> str | None:
        """The folder of a `move:<folder>` post-action, else None."""
        return self.post_action[5:].strip() if self.post_action.startswith("move:") else None

    @property
    def secret_source(self) -> tuple[str, str]:
        """(key, where) of the secret, safe to show: e.g. ("password_env", "IMAP_PW")."""
        for key in SECRET_KEYS:
            value = getattr(self, key)
            if isinstance(value, tuple):  # a token command: its arguments may hold secrets
                hidden = f" ({len(value) - 1} arguments not shown)" if len(value) > 1 else ""
                return key, value[0] + hidden
            if value is not None:
                return key, str(value)
        raise AssertionError("validated settings always have a secret source")


class Settings(_Model):
    """Everything govfeed is configured with (secrets excluded)."""

    database: DatabaseSettings = DatabaseSettings()
    authentication: AuthenticationSettings = AuthenticationSettings()
    mailboxes: tuple[MailboxSettings, ...] = ()
    agencies: tuple[AgencySettings, ...] = ()
    replication: ReplicationSettings | None = None
    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: set[str] = set()
        for index, mailbox in enumerate(self.mailboxes):
            if mailbox.name in seen:
                raise ValueError(f"mailboxes[{index}].name: {mailbox.name!r} is used twice")
            seen.add(mailbox.name)
        return self

    @model_validator(mode="after")
    def _unique_agencies(self) -> Settings:
        """No name or alias may name two agencies of the registry, the built-in ones
        included: the first match would win without a word."""
        seen: dict[str, str] = {}
        replaced = {agency.name for agency in self.agencies}
        built_in = [(None, a) for a in DEFAULT_AGENCIES if a.name not in replaced]
        for index, agency in [*built_in, *enumerate(self.agencies)]:
            for name in (agency.name, *agency.aliases):
                key = " ".join(name.casefold().split())
                if key in seen and seen[key] != agency.name:
                    hint = (
                        ""
                        if seen[key] in replaced
                        else " (built in: an entry of that name replaces it)"
                    )
                    raise ValueError(
                        f"agencies[{index}]: {name!r} already names {seen[key]!r}{hint}"
                    )
                seen[key] = agency.name
        return self

    @property
    def registry(self) -> tuple[AgencySettings, ...]:
        """The agency registry: the built-in agencies, then the config's; a config entry
        with a built-in's name replaces it."""
        names = {agency.name for agency in self.agencies}
        return (*(a for a in DEFAULT_AGENCIES if a.name not in names), *self.agencies)

    @property
    def source(self) -> Path | None:
        """The file these settings were read from; None for the built-in defaults."""
        return self._source

    def mailbox(self, name: str) -> MailboxSettings:
        for mailbox in self.mailboxes:
            if mailbox.name == name:
                return mailbox
        raise ConfigError(f"no mailbox named {name!r} in the configuration")

    def authentication_for(self, mailbox: str | None) -> TrustPolicy:
        """The trust policy for one mailbox (its overrides applied, the agency registry
        included); `None` or an unknown name (such as "import") gets the global
        `[authentication]` settings."""
        auth = self.authentication
        found = [m for m in self.mailboxes if m.name == mailbox]
        overrides: dict[str, Any] = {}
        if found and found[0].trusted_authserv_ids is not None:
            overrides["trusted_authserv_ids"] = found[0].trusted_authserv_ids
        if found and found[0].unauthenticated is not None:
            overrides["unauthenticated"] = found[0].unauthenticated
        return trust_policy(auth.model_copy(update=overrides), self.registry)

    def trust_warnings(self, *, files: bool = True) -> list[str]:
        """What an operator must hear at start: settings that quarantine every bulletin.
        `files`: also the policy of `govfeed import` (the global one); else the mailboxes'."""
        names: list[str | None] = [m.name for m in self.mailboxes]
        if files or not names:
            names.append(None)
        untrusted = [n for n in names if not self.authentication_for(n).trusted_authserv_ids]
        if not untrusted:
            return []
        where = ", ".join(f"mailbox {n}" if n else "[authentication]" for n in untrusted)
        return [f"no trusted_authserv_ids ({where}): government mail will be quarantined"]


def trust_policy(
    auth: AuthenticationSettings, registry: tuple[AgencySettings, ...] = DEFAULT_AGENCIES
) -> TrustPolicy:
    """A plain copy of `auth` and the registry, for the parsing workers and decide.py."""
    return TrustPolicy(
        trusted_authserv_ids=tuple(auth.trusted_authserv_ids),
        unauthenticated=auth.unauthenticated,
        sender_domains=tuple(auth.sender_domains),
        dkim_verify=auth.dkim_verify,
        registry=tuple(
            Agency(a.name, tuple(a.aliases), tuple(a.account_codes), tuple(a.senders))
            for a in registry
        ),
    )


def load_settings(path: Path | None = None, *, db_override: Path | None = None) -> Settings:
    """Read and validate the config file: `path`, else `$GOVFEED_CONFIG`, else the defaults
    (database `govfeed.db` in the working directory, no mailboxes).

    Raises ConfigError with a one-line message naming the file and the dotted key. Logs a
    `config_secret_readable` warning per secret file readable by group or others.
    """
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    data: dict[str, Any] = {}
    context: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
        context["base"] = path.expanduser().absolute().parent
    try:
        settings = Settings.model_validate(data, context=context)
    except ValidationError as err:
        raise ConfigError(_describe(err, str(path or "defaults"))) from None
    settings._source = path
    if db_override is not None:
        settings = settings.model_copy(update={"database": DatabaseSettings(path=db_override)})
        settings._source = path
    for warning in secret_file_warnings(settings):
        log.warning("config_secret_readable", **warning)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.expanduser().read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from err
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from err


_PATTERN_MESSAGES = {
    "name": "must be letters, digits, '.', '_' or '-', starting with a letter or digit",
    "password_env": "must be an environment variable name",
    "credential": "must be a credential (file) name: letters, digits, '.', '_', '@' or '-'",
}


def _describe(err: ValidationError, where: str) -> str:
    """One line: `file: dotted.key: problem; other.key: problem`."""
    problems = []
    for error in err.errors():
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        key = key.lstrip(".")
        problems.append(f"{key}: {_problem(error)}" if key else _problem(error))
    return f"{where}: " + "; ".join(problems)


def _problem(error: Any) -> str:
    kind, message = error["type"], str(error["msg"])
    leaf = error["loc"][-1] if error["loc"] else None
    if kind == "extra_forbidden":
        if leaf == "password":
            return (
                "inline passwords are not supported; use password_file, password_env or credential"
            )
        close = difflib.get_close_matches(str(leaf), _known_keys(), n=1, cutoff=0.7)
        return "unknown key" + (f" (did you mean {close[0]}?)" if close else "")
    if kind == "missing":
        return "required"
    if kind == "too_short":
        return "must not be empty"
    if kind == "string_pattern_mismatch" and leaf in _PATTERN_MESSAGES:
        return _PATTERN_MESSAGES[str(leaf)]
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        got = error.get("input")
        shown = f" (got {got!r})" if isinstance(got, str) and len(got) < 40 else ""
        return f"must be one of {', '.join(allowed)}{shown}"
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    message = message.replace("Input should be ", "must be ", 1)
    return message[:1].lower() + message[1:]


def _known_keys() -> list[str]:
    models: list[type[BaseModel]] = [
        Settings,
        DatabaseSettings,
        AuthenticationSettings,
        MailboxSettings,
        AgencySettings,
        ReplicationSettings,
    ]
    return sorted({name for model in models for name in model.model_fields})


def secret_file_warnings(settings: Settings) -> list[dict[str, str]]:
    """A warning (mailbox, key, path, mode, problem) per secret file that group or others
    can read, or whose folder group or others can write (they could swap the file)."""
    warnings = []
    for mailbox in settings.mailboxes:
        for key in ("password_file", "oauth2_token_file"):
            path: Path | None = getattr(mailbox, key)
            if path is None:
                continue
            for checked, mask, problem in (
                (path, stat.S_IRWXG | stat.S_IRWXO, "readable by group or others"),
                (path.parent, stat.S_IWGRP | stat.S_IWOTH, "in a folder group or others can write"),
            ):
                try:
                    mode = checked.stat().st_mode
                except OSError:
                    continue  # may only exist at run time (a systemd credential); read_secret says
                if mode & mask and not (checked != path and mode & stat.S_ISVTX):
                    warnings.append(
                        {
                            "mailbox": mailbox.name,
                            "key": key,
                            "path": str(checked),
                            "mode": f"{stat.S_IMODE(mode):04o}",
                            "problem": problem,
                        }
                    )
    return warnings


class Secret:
    """A password or token. `str()` and `repr()` never show it; call `reveal()` to use it."""

    __slots__ = ("_value", "kind")

    def __init__(self, value: str, kind: SecretKind) -> None:
        self._value = value
        self.kind: SecretKind = kind

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(kind={self.kind!r}, value='********')"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


def read_secret(mailbox: MailboxSettings) -> Secret:
    """Fetch the mailbox's password or OAuth2 access token from where the config points.

    Called at each login, so a rotated password file or a token command that refreshes an
    expired token takes effect on the next connection. Raises ConfigError (never showing the
    value) when the source is missing or empty.
    """
    key, _ = mailbox.secret_source
    where = f"mailbox {mailbox.name}: {key}"
    if mailbox.password_file is not None:
        return Secret(_read_secret_file(mailbox.password_file, where), "password")
    if mailbox.oauth2_token_file is not None:
        return Secret(_read_secret_file(mailbox.oauth2_token_file, where).strip(), "oauth2")
    if mailbox.password_env is not None:
        value = os.environ.get(mailbox.password_env)
        if not value:
            raise ConfigError(f"{where}: ${mailbox.password_env} is not set or empty")
        return Secret(value, "password")
    if mailbox.credential is not None:
        directory = os.environ.get(CREDENTIALS_ENV)
        if not directory:
            raise ConfigError(
                f"{where}: ${CREDENTIALS_ENV} is not set (systemd sets it for LoadCredential=)"
            )
        return Secret(_read_secret_file(Path(directory) / mailbox.credential, where), "password")
    assert mailbox.oauth2_token_command is not None
    return Secret(
        _run_token_command(mailbox.oauth2_token_command, mailbox.timeout, where), "oauth2"
    )


def _read_secret_file(path: Path, where: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as err:
        raise ConfigError(f"{where}: cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {path} is not UTF-8 text") from None
    if not value:
        raise ConfigError(f"{where}: {path} is empty")
    return value


def _run_token_command(argv: tuple[str, ...], timeout: float, where: str) -> str:
    # stderr is left to the daemon's own stderr: it is the helper's message to the operator
    # and may be anything, so it is kept out of our errors.
    try:
        result = subprocess.run(
            list(argv), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{where}: {argv[0]} did not finish within {timeout:g} s") from None
    except OSError as err:
        raise ConfigError(f"{where}: cannot run {argv[0]}: {err.strerror or err}") from None
    if result.returncode != 0:
        raise ConfigError(f"{where}: {argv[0]} exited with status {result.returncode}")
    token = result.stdout.decode("utf-8", errors="replace").strip()
    if not token or "\n" in token:
        raise ConfigError(f"{where}: {argv[0]} must print the access token on one line")
    return token
