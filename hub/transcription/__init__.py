"""Automatic call transcription for QA: after hang-up, every recording is transcribed per
speaker with word timings, measured (talk share, silences, overtalk, pace, sentiment),
redacted (text and audio) and stored as a ``Transcript``.

- ``queueing``: the job and the queued ``Transcript`` row, written with the recording's end;
- ``worker``: the heavy part, in separate, lower-priority processes;
- ``speakers``: who spoke on the right channel (IVR, agent, supervisor, external);
- ``metrics``: the conversation's measures; ``audio_redaction``: the silenced copy;
- ``service``: the job handler that ties them to the database.
"""
