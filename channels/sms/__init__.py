"""SMS: an SMPP 3.4 client (bind_transceiver) and a Twilio-compatible HTTP provider.

Sans-IO parts (``gsm7``, ``segments``, ``udh``, ``dlr``, ``pdu``, ``mo``) hold the protocol
rules and are tested by feeding bytes; ``smpp_client`` and ``twilio`` do the I/O.
"""
