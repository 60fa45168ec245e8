"""The email channel: SMTP in (aiosmtpd), IMAP in (aioimaplib, IDLE), SMTP out (aiosmtplib).

Modules: ``settings`` (``HUB_EMAIL_*``), ``mime`` (sans-IO parser), ``sanitize``
(``sanitize_html`` for the console), ``recipients`` (RCPT → inbox), ``intake`` (parse →
ingest → auto-ack; DSN → delivery status; fax inboxes → OCR), ``smtp_listener``,
``imap_poller``, ``compose`` (threaded replies), ``sender``, ``dsn`` (RFC 3464),
``autoreply`` (RFC 3834), ``runtime`` (started by ``hub.channel_runtime``).

Main settings: ``HUB_EMAIL_LISTEN=1``, ``HUB_EMAIL_BIND``, ``HUB_EMAIL_PORT`` (2525),
``HUB_EMAIL_DOMAINS`` (comma list), ``HUB_EMAIL_ROUTES`` (``support=Support email;fax=Fax``),
``HUB_EMAIL_MAX_MESSAGE_BYTES``, ``HUB_EMAIL_RELAY_HOST``/``_PORT``/``_USERNAME``/
``_PASSWORD``/``_STARTTLS`` (outbound), ``HUB_EMAIL_AUTO_ACK`` and ``_AUTO_ACK_TEXT``,
``HUB_EMAIL_IMAP_HOST``/``_PORT``/``_SSL``/``_USERNAME``/``_PASSWORD``/``_MAILBOX``/
``_INBOX``. An inbox may set ``config["auto_ack"] = {"enabled": bool, "text": "… {reference}"}``
and ``config["email_addresses"] = ["sales@example.com"]``.
"""
