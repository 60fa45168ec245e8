"""The MIME parser on real-world shapes of mail, including broken ones: the message is kept
and the problem is named, never dropped or crashed on."""

from __future__ import annotations

import base64

import pytest

from channels.base import DeliveryStatus
from channels.email.dsn import parse_dsn
from channels.email.mime import MalformedMessage, ParseLimits, parse_message
from channels.email.sanitize import sanitize_html


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("latin-1")


def test_text_part_is_preferred_and_html_kept_raw_for_sanitizing():
    raw = crlf(
        "From: =?utf-8?q?Zo=C3=AB?= <ZOE@Example.ORG>\n"
        "To: support@example.com\n"
        "Subject: =?utf-8?q?R=C3=A9sum=C3=A9?=\n"
        "Message-ID: <a1@example.org>\n"
        "In-Reply-To: <p2@hub.test>\n"
        "References: <p0@hub.test> <p1@hub.test> <p2@hub.test>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="b"\n\n'
        "--b\nContent-Type: text/plain; charset=utf-8\n\nplain words\n"
        '--b\nContent-Type: text/html; charset=utf-8\n\n<p onclick="x()">html <b>words</b></p>'
        "<script>alert(1)</script>\n--b--\n"
    )
    parsed = parse_message(raw)
    assert parsed.from_address == "zoe@example.org" and parsed.from_name == "Zoë"
    assert parsed.subject == "Résumé"
    assert parsed.text == "plain words" and not parsed.text_from_html
    assert parsed.html is not None and "<script>" in parsed.html  # raw, as received
    assert sanitize_html(parsed.html) == "<p>html <b>words</b></p>"
    assert parsed.thread_refs == ("<p2@hub.test>", "<p1@hub.test>", "<p0@hub.test>")
    assert parsed.problems == ()


def test_html_only_mail_gets_a_searchable_text_body():
    raw = crlf(
        "From: a@b.test\nSubject: x\nContent-Type: text/html; charset=utf-8\n\n"
        "<html><head><style>p{}</style></head><body><p>Hello&nbsp;there</p>"
        "<p>Line&amp;two</p></body></html>\n"
    )
    parsed = parse_message(raw)
    assert parsed.text.split("\n") == ["Hello there", "Line&two"]
    assert parsed.text_from_html


def test_unknown_charset_degrades_with_a_problem():
    raw = crlf(
        "From: a@b.test\nSubject: x\nMessage-ID: <cs@b.test>\n"
        "Content-Type: text/plain; charset=x-klingon\n\nqapla'\n"
    )
    parsed = parse_message(raw)
    assert parsed.text == "qapla'"
    assert parsed.problems == (
        "unknown charset 'x-klingon' in the text/plain part; shown as UTF-8",
    )


def test_bytes_that_do_not_match_the_charset_are_replaced_and_named():
    raw = (
        b"From: a@b.test\r\nSubject: x\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\ncaf\xe9\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text == "caf\ufffd"
    assert "not valid utf-8" in parsed.problems[0]


def test_a_multipart_without_its_boundary_keeps_the_text_and_names_the_defect():
    raw = crlf(
        "From: a@b.test\nSubject: broken\nMessage-ID: <mp@b.test>\n"
        'Content-Type: multipart/mixed; boundary="never-used"\n\n'
        "This text was never wrapped in the announced boundary.\n"
    )
    parsed = parse_message(raw)
    assert "never wrapped in the announced boundary" in parsed.text
    assert any("malformed multipart" in p for p in parsed.problems)


def test_attachment_caps_drop_with_a_problem_not_silently():
    big = base64.b64encode(b"x" * 2000).decode()
    small = base64.b64encode(b"%PDF-1.4 tiny").decode()
    parts = "".join(
        f'--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="{n}"\n'
        f"Content-Transfer-Encoding: base64\n\n{data}\n"
        for n, data in (("big.pdf", big), ("a.pdf", small), ("b.pdf", small), ("c.pdf", small))
    )
    raw = crlf(
        'From: a@b.test\nSubject: files\nContent-Type: multipart/mixed; boundary="b"\n\n'
        f"--b\nContent-Type: text/plain\n\nsee attached\n{parts}--b--\n"
    )
    parsed = parse_message(raw, ParseLimits(max_attachment_bytes=1000, max_attachments=2))
    assert [a.filename for a in parsed.attachments] == ["a.pdf", "b.pdf"]
    assert parsed.attachments[0].data == b"%PDF-1.4 tiny"
    assert parsed.problems == (
        "attachment 'big.pdf' (2000 bytes) is over the 1000-byte cap and was not stored",
        "1 attachment(s) beyond the limit of 2 were not stored",
    )


def test_headers_in_raw_8bit_or_other_charsets_are_decoded():
    raw = (
        b"From: =?iso-8859-1?q?Andr=E9?= <andre@b.test>\r\n"
        b"Subject: caf\xc3\xa9 \xff =?utf-8?b?###?=\r\n\r\nx"
    )
    parsed = parse_message(raw)
    assert parsed.from_name == "Andr\u00e9"
    assert parsed.subject.startswith("caf\u00e9 \ufffd")


def test_a_missing_message_id_is_synthesized_from_the_bytes_so_redelivery_dedupes():
    raw = crlf("From: a@b.test\nSubject: x\n\nno id\n")
    first, second = parse_message(raw), parse_message(raw)
    assert first.synthesized_id and first.message_id == second.message_id
    assert first.message_id.endswith("@no-message-id.invalid>")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"\r\n\r\njust a body, no headers\r\n", "no header section"),
        (b"Subject: anonymous\r\n\r\nhi\r\n", "no sender address"),
        (b"From: Undisclosed\r\n\r\nhi\r\n", "no sender address"),
        (b"From: not an address\r\nSubject: x\r\n\r\nhi\r\n", "no sender address"),
    ],
)
def test_messages_we_cannot_attribute_are_refused(raw: bytes, reason: str):
    with pytest.raises(MalformedMessage, match=reason):
        parse_message(raw)


def test_rfc3464_dsn_names_the_original_and_the_failure():
    raw = crlf(
        "From: MAILER-DAEMON@relay.test\nTo: support@example.com\nSubject: Undelivered\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n'
        "--r\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
        "--r\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; relay.test\n\n"
        "Final-Recipient: rfc822; gone@customer.test\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\n"
        "--r\nContent-Type: text/rfc822-headers\n\n"
        "From: support@example.com\nMessage-ID: <ch.abc@hub.test>\nSubject: Re: x\n"
        "--r--\n"
    )
    report = parse_dsn(raw)
    assert report is not None
    assert report.original_message_id == "<ch.abc@hub.test>"
    assert report.status == DeliveryStatus.FAILED
    assert report.detail == "failed 5.1.1 for gone@customer.test (550 5.1.1 user unknown)"
    assert parse_dsn(crlf("From: a@b.test\nSubject: x\n\nnot a report\n")) is None


def _report(*recipient_blocks: str) -> bytes:
    return crlf(
        "From: MAILER-DAEMON@relay.test\nTo: support@example.com\nSubject: Report\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n'
        "--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay.test\n\n"
        + "\n".join(recipient_blocks)
        + "--r\nContent-Type: text/rfc822-headers\n\nMessage-ID: <ch.m@hub.test>\n--r--\n"
    )


def _block(recipient: str, action: str, status: str) -> str:
    return f"Final-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: {status}\n"


def test_a_dsn_weighs_every_recipient_not_only_the_first():
    """A reply copied to two people: one delivered, one bounced. The bounce is what the
    agent must see, whichever order the MTA listed them in (RFC 3464 §2.3)."""
    report = parse_dsn(
        _report(
            _block("cc@ok.test", "delivered", "2.0.0"), _block("gone@x.test", "failed", "5.1.1")
        )
    )
    assert report is not None and report.status == DeliveryStatus.FAILED
    assert report.detail == "failed 5.1.1 for gone@x.test; delivered 2.0.0 for cc@ok.test"
    both = parse_dsn(
        _report(
            _block("a@ok.test", "delivered", "2.0.0"), _block("b@ok.test", "delivered", "2.0.0")
        )
    )
    assert both is not None and both.status == DeliveryStatus.DELIVERED
    pending = parse_dsn(
        _report(
            _block("a@ok.test", "delivered", "2.0.0"), _block("b@slow.test", "delayed", "4.4.7")
        )
    )
    assert pending is not None and pending.status is None  # nothing final for b yet
