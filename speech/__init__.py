"""Contact Hub: speech. Offline ASR, TTS, VAD, DTMF and telephony audio on local models.

Modules (import what you need; models load lazily, once per process):

- `speech.audio`: `Audio`, `AudioError`, WAV read/write, `resample`, `split_stereo`
- `speech.g711`: μ-law / A-law encode and decode (ITU-T G.711)
- `speech.dtmf`: `DtmfDetector` (ITU-T Q.24 receiver), `generate_dtmf`
- `speech.tts`: `Synthesizer` (Piper): PCM, sentence streaming, 20 ms G.711 frames, cache
- `speech.prompts`: `PromptCache`, IVR prompts rendered once (8 kHz, memory and disk)
- `speech.markup`: prompt markup (<digits>, <spell>, <pause 300ms>)
- `speech.asr`: `Recognizer` protocol, `WhisperRecognizer`, `Utterance`, `Transcript`
- `speech.vosk_asr`: `VoskRecognizer` (optional): streaming partials, grammar menus
- `speech.pool`: `RecognizerPool`, bounded recognition off the event loop
- `speech.vad`: `Endpointer`, `BargeInDetector`, `SileroVad`
- `speech.settings`: `SpeechSettings` from ``HUB_SPEECH_*``
- `speech.wer`: word error rate with ASR-friendly normalization
- `speech.cli`: the `say`, `transcribe` and `dtmf` commands

This package never imports the hub, channels, web or dialogs layers.
"""
