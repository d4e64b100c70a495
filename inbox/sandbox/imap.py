"""A minimal IMAP4rev1 server (RFC 3501) on 127.0.0.1, enough for Python's imaplib.

Commands: CAPABILITY, NOOP, LOGOUT, STARTTLS (with a TLS context), LOGIN, SELECT, EXAMINE,
CLOSE, UNSELECT, SEARCH / UID SEARCH (ALL, SEEN, UNSEEN), FETCH / UID FETCH (UID, FLAGS,
RFC822.SIZE, RFC822, BODY[], BODY.PEEK[]), STORE / UID STORE (FLAGS, +FLAGS, -FLAGS, .SILENT).
As the RFC says, RFC822 and BODY[] set \\Seen on a mailbox opened with SELECT; BODY.PEEK[] and
EXAMINE never do. Tests put mail in with `deliver(raw)` and read flags with `flags(uid)`;
`renumber()` changes UIDVALIDITY as a server does when a mailbox is recreated.
"""

from __future__ import annotations

import hmac
import socketserver
import ssl
import threading
from dataclasses import dataclass, field

SYSTEM_FLAGS = (r"\Seen", r"\Answered", r"\Flagged", r"\Deleted", r"\Draft")


@dataclass
class StoredMessage:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class Mailbox:
    name: str
    uidvalidity: int
    uidnext: int = 1
    messages: list[StoredMessage] = field(default_factory=list)


@dataclass
class FakeImap:
    username: str = "support@coccinelle.test"
    password: str = "imap-password"
    host: str = "127.0.0.1"
    port: int = 0
    tls_context: ssl.SSLContext | None = None  # offers STARTTLS
    implicit_tls: bool = False  # like port 993
    first_uidvalidity: int = 1_700_000_000
    commands: list[str] = field(default_factory=list)  # "SELECT INBOX", "UID FETCH 1 (...)" — no passwords
    _mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    _server: socketserver.ThreadingTCPServer | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- control --------------------------------------------------------------------------------
    def start(self) -> FakeImap:
        if self.implicit_tls and self.tls_context is None:
            raise ValueError("implicit_tls needs a tls_context")
        self.mailbox("INBOX")
        self._server = _Server((self.host, self.port), _ImapHandler, fake=self)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name="fake-imap").start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeImap:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self._server.server_address[1]

    def mailbox(self, name: str = "INBOX") -> Mailbox:
        key = _mailbox_key(name)
        with self._lock:
            if key not in self._mailboxes:
                self._mailboxes[key] = Mailbox(name=key, uidvalidity=self.first_uidvalidity + len(self._mailboxes))
            return self._mailboxes[key]

    def deliver(self, raw: bytes, *, mailbox: str = "INBOX", flags: tuple[str, ...] = ()) -> int:
        """Append a message as a mail server would on delivery; returns its UID."""
        with self._lock:
            box = self.mailbox(mailbox)
            uid = box.uidnext
            box.uidnext += 1
            box.messages.append(StoredMessage(uid=uid, raw=bytes(raw), flags=set(flags)))
            return uid

    def flags(self, uid: int, *, mailbox: str = "INBOX") -> set[str]:
        with self._lock:
            for message in self.mailbox(mailbox).messages:
                if message.uid == uid:
                    return set(message.flags)
        raise KeyError(uid)

    def is_seen(self, uid: int, *, mailbox: str = "INBOX") -> bool:
        return r"\Seen" in self.flags(uid, mailbox=mailbox)

    def renumber(self, *, mailbox: str = "INBOX") -> int:
        """A new UIDVALIDITY and fresh UIDs from 1: every UID a client kept is now meaningless."""
        with self._lock:
            box = self.mailbox(mailbox)
            box.uidvalidity += 1000
            for i, message in enumerate(box.messages, start=1):
                message.uid = i
            box.uidnext = len(box.messages) + 1
            return box.uidvalidity


def _mailbox_key(name: str) -> str:
    return "INBOX" if name.upper() == "INBOX" else name


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, *, fake):
        self.fake = fake
        super().__init__(address, handler)


class _Bad(Exception):
    """A command we cannot parse: answered BAD."""


def _tokens(text: str) -> list:
    """IMAP arguments: atoms (brackets kept together: BODY.PEEK[]), "quoted", (lists)."""
    out: list = []
    stack: list[list] = [out]
    i = 0
    while i < len(text):
        c = text[i]
        if c == " ":
            i += 1
        elif c == "(":
            inner: list = []
            stack[-1].append(inner)
            stack.append(inner)
            i += 1
        elif c == ")":
            if len(stack) == 1:
                raise _Bad("unbalanced parenthesis")
            stack.pop()
            i += 1
        elif c == '"':
            i += 1
            value = []
            while i < len(text) and text[i] != '"':
                if text[i] == "\\" and i + 1 < len(text):
                    i += 1
                value.append(text[i])
                i += 1
            if i >= len(text):
                raise _Bad("unterminated quoted string")
            stack[-1].append("".join(value))
            i += 1
        elif c == "{":
            raise _Bad("literals are not supported by this sandbox")
        else:
            start, depth = i, 0
            while i < len(text) and (depth or text[i] not in " ()"):
                depth += {"[": 1, "]": -1}.get(text[i], 0)
                i += 1
            stack[-1].append(text[start:i])
    if len(stack) != 1:
        raise _Bad("unbalanced parenthesis")
    return out


def _sequence_set(spec: str, values: list[int]) -> list[int]:
    """Members of `values` (UIDs or sequence numbers, ascending) named by "1,3:5,7:*"."""
    if not values:
        return []
    top = values[-1]
    wanted: set[int] = set()
    for piece in spec.split(","):
        low, _, high = piece.partition(":")
        try:
            a = top if low == "*" else int(low)
            b = a if not high else (top if high == "*" else int(high))
        except ValueError:
            raise _Bad(f"bad sequence set {spec!r}") from None
        a, b = min(a, b), max(a, b)
        wanted.update(v for v in values if a <= v <= b)
    return sorted(wanted)


class _ImapHandler(socketserver.BaseRequestHandler):
    fake: FakeImap

    def setup(self) -> None:
        self.fake = self.server.fake
        self.conn = self.request
        self.conn.settimeout(30)
        self.tls = False
        self.user: str | None = None
        self.selected: Mailbox | None = None
        self.readonly = False

    def send(self, data: bytes | str) -> None:
        self.conn.sendall(data.encode("utf-8") if isinstance(data, str) else data)

    def handle(self) -> None:
        try:
            if self.fake.implicit_tls:
                self.conn = self.fake.tls_context.wrap_socket(self.conn, server_side=True)
                self.tls = True
            self.reader = self.conn.makefile("rb")
            self.send("* OK [CAPABILITY " + self._capabilities() + "] Coccinelle sandbox IMAP ready\r\n")
            while True:
                line = self.reader.readline(65536)
                if not line:
                    return
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                tag, _, rest = text.partition(" ")
                command, _, args = rest.partition(" ")
                command = command.upper()
                if command == "UID":
                    sub, _, args = args.partition(" ")
                    command = f"UID {sub.upper()}"
                self.fake.commands.append(f"{command} {args}" if command != "LOGIN" else "LOGIN ***")
                try:
                    if not tag or not command:
                        raise _Bad("expected: tag command")
                    if self.dispatch(tag, command, args) is False:
                        return
                except _Bad as exc:
                    self.send(f"{tag or '*'} BAD {exc}\r\n")
        except (OSError, ssl.SSLError):
            return

    def _capabilities(self) -> str:
        caps = ["IMAP4rev1", "UNSELECT"]
        if self.fake.tls_context is not None and not self.tls:
            caps.append("STARTTLS")
        return " ".join(caps)  # LOGIN only: no AUTHENTICATE mechanism is offered

    def dispatch(self, tag: str, command: str, args: str):
        if command == "CAPABILITY":
            self.send(f"* CAPABILITY {self._capabilities()}\r\n{tag} OK CAPABILITY completed\r\n")
        elif command == "NOOP":
            self.send(f"{tag} OK NOOP completed\r\n")
        elif command == "LOGOUT":
            self.send(f"* BYE Coccinelle sandbox logging out\r\n{tag} OK LOGOUT completed\r\n")
            return False
        elif command == "STARTTLS":
            if self.fake.tls_context is None or self.tls:
                raise _Bad("STARTTLS not available")
            self.send(f"{tag} OK Begin TLS negotiation now\r\n")
            self.conn = self.fake.tls_context.wrap_socket(self.conn, server_side=True)
            self.reader = self.conn.makefile("rb")
            self.tls = True
        elif command == "LOGIN":
            self.login(tag, _tokens(args))
        elif self.user is None:
            raise _Bad(f"{command} needs LOGIN first")
        elif command in ("SELECT", "EXAMINE"):
            self.select(tag, command, _tokens(args))
        elif self.selected is None:
            raise _Bad(f"{command} needs SELECT first")
        elif command in ("CLOSE", "UNSELECT"):
            self.selected = None
            self.send(f"{tag} OK {command} completed\r\n")
        elif command in ("SEARCH", "UID SEARCH"):
            self.search(tag, command, _tokens(args))
        elif command in ("FETCH", "UID FETCH"):
            self.fetch(tag, command, _tokens(args))
        elif command in ("STORE", "UID STORE"):
            self.store(tag, command, _tokens(args))
        else:
            raise _Bad(f"unknown command {command}")
        return None

    # -- commands --------------------------------------------------------------------------------
    def login(self, tag: str, args: list) -> None:
        if len(args) != 2 or not all(isinstance(a, str) for a in args):
            raise _Bad("LOGIN user password")
        user, password = args
        if hmac.compare_digest(f"{user}\0{password}".encode(), f"{self.fake.username}\0{self.fake.password}".encode()):
            self.user = user
            self.send(f"{tag} OK [CAPABILITY {self._capabilities()}] LOGIN completed\r\n")
        else:
            self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")

    def select(self, tag: str, command: str, args: list) -> None:
        if len(args) != 1 or not isinstance(args[0], str):
            raise _Bad(f"{command} mailbox")
        with self.fake._lock:
            box = self.fake._mailboxes.get(_mailbox_key(args[0]))
            if box is None:
                self.selected = None
                self.send(f"{tag} NO [NONEXISTENT] No such mailbox\r\n")
                return
            self.selected, self.readonly = box, command == "EXAMINE"
            unseen = [i for i, m in enumerate(box.messages, start=1) if r"\Seen" not in m.flags]
            lines = [
                f"* FLAGS ({' '.join(SYSTEM_FLAGS)})",
                f"* OK [PERMANENTFLAGS ({' '.join(SYSTEM_FLAGS) if not self.readonly else ''})] Limited",
                f"* {len(box.messages)} EXISTS",
                "* 0 RECENT",
                *([f"* OK [UNSEEN {unseen[0]}] First unseen"] if unseen else []),
                f"* OK [UIDVALIDITY {box.uidvalidity}] UIDs valid",
                f"* OK [UIDNEXT {box.uidnext}] Predicted next UID",
                f"{tag} OK [{'READ-ONLY' if self.readonly else 'READ-WRITE'}] {command} completed",
            ]
        self.send("\r\n".join(lines) + "\r\n")

    def search(self, tag: str, command: str, args: list) -> None:
        if len(args) >= 2 and isinstance(args[0], str) and args[0].upper() == "CHARSET":
            args = args[2:]
        criteria = [a.upper() for a in args if isinstance(a, str)] or ["ALL"]
        with self.fake._lock:
            found = []
            for seq, message in enumerate(self.selected.messages, start=1):
                ok = True
                for criterion in criteria:
                    if criterion == "ALL":
                        continue
                    if criterion == "SEEN":
                        ok &= r"\Seen" in message.flags
                    elif criterion == "UNSEEN":
                        ok &= r"\Seen" not in message.flags
                    else:
                        raise _Bad(f"search key {criterion} is not supported by this sandbox")
                if ok:
                    found.append(message.uid if command.startswith("UID") else seq)
        self.send(f"* SEARCH {' '.join(map(str, found))}".rstrip() + f"\r\n{tag} OK SEARCH completed\r\n")

    def _targets(self, command: str, spec: str) -> list[tuple[int, StoredMessage]]:
        messages = self.selected.messages
        if command.startswith("UID"):
            uids = _sequence_set(spec, [m.uid for m in messages])
            return [(i, m) for i, m in enumerate(messages, start=1) if m.uid in set(uids)]
        seqs = set(_sequence_set(spec, list(range(1, len(messages) + 1))))
        return [(i, m) for i, m in enumerate(messages, start=1) if i in seqs]

    def fetch(self, tag: str, command: str, args: list) -> None:
        if len(args) != 2 or not isinstance(args[0], str):
            raise _Bad("FETCH set items")
        items = args[1] if isinstance(args[1], list) else [args[1]]
        names = [str(i).upper() for i in items]
        for name in names:
            if name not in ("UID", "FLAGS", "RFC822.SIZE", "RFC822", "BODY[]", "BODY.PEEK[]"):
                raise _Bad(f"fetch item {name} is not supported by this sandbox")
        out = bytearray()
        with self.fake._lock:
            for seq, message in self._targets(command, args[0]):
                marks_seen = any(n in ("RFC822", "BODY[]") for n in names) and not self.readonly
                if marks_seen:
                    message.flags.add(r"\Seen")
                fields = []
                if command.startswith("UID") or "UID" in names:
                    fields.append(f"UID {message.uid}")
                if "FLAGS" in names or marks_seen:
                    fields.append(f"FLAGS ({' '.join(sorted(message.flags))})")
                if "RFC822.SIZE" in names:
                    fields.append(f"RFC822.SIZE {len(message.raw)}")
                body_name = next((n for n in names if n in ("RFC822", "BODY[]", "BODY.PEEK[]")), None)
                head = f"* {seq} FETCH (" + " ".join(fields)
                if body_name:
                    label = "RFC822" if body_name == "RFC822" else "BODY[]"
                    out += f"{head}{' ' if fields else ''}{label} {{{len(message.raw)}}}\r\n".encode()
                    out += message.raw + b")\r\n"
                else:
                    out += f"{head})\r\n".encode()
        out += f"{tag} OK FETCH completed\r\n".encode()
        self.send(bytes(out))

    def store(self, tag: str, command: str, args: list) -> None:
        if len(args) != 3 or not isinstance(args[0], str) or not isinstance(args[1], str):
            raise _Bad("STORE set (+|-)FLAGS[.SILENT] (flags)")
        if self.readonly:
            self.send(f"{tag} NO [READ-ONLY] Mailbox was opened with EXAMINE\r\n")
            return
        action = args[1].upper()
        silent = action.endswith(".SILENT")
        action = action.removesuffix(".SILENT")
        if action not in ("FLAGS", "+FLAGS", "-FLAGS"):
            raise _Bad(f"unknown STORE action {args[1]}")
        flags = args[2] if isinstance(args[2], list) else [args[2]]
        flags = {f for f in flags if isinstance(f, str)}
        lines = []
        with self.fake._lock:
            for seq, message in self._targets(command, args[0]):
                if action == "FLAGS":
                    message.flags = set(flags)
                elif action == "+FLAGS":
                    message.flags |= flags
                else:
                    message.flags -= flags
                if not silent:
                    uid = f"UID {message.uid} " if command.startswith("UID") else ""
                    lines.append(f"* {seq} FETCH ({uid}FLAGS ({' '.join(sorted(message.flags))}))")
        self.send("".join(line + "\r\n" for line in lines) + f"{tag} OK STORE completed\r\n")
