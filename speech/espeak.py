"""espeak-ng (Debian) as the voice of the languages no Piper voice ships for.

Only an English Piper voice comes in a package, so a dialog's other languages are spoken
by espeak-ng: robotic, but offline, in about a hundred languages, with nothing to download.
``EspeakSynthesizer`` has the interface ``speech.prompts.PromptCache`` renders with (an
``identity`` for cache keys, ``warm_up``, ``iter_sentences``), so prompts in every language
are rendered once and cached like Piper's. One ``espeak-ng`` process per sentence, run in
the prompt cache's TTS thread.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from speech.audio import Audio, read_wav
from speech.markup import Pause, parse_prompt

ESPEAK_SECONDS = 20.0


class EspeakSynthesizer:
    """Speech in ``voice`` (an espeak-ng voice name such as ``es`` or ``fr``)."""

    def __init__(self, voice: str, *, words_per_minute: int = 150) -> None:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise FileNotFoundError("espeak-ng is not installed (Debian package espeak-ng)")
        self.binary = binary
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.sample_rate = 22050  # espeak-ng's output rate

    @property
    def identity(self) -> str:
        return json.dumps(["espeak-ng", self.voice, self.words_per_minute])

    def _speak(self, sentence: str) -> Audio:
        # A file, not --stdout: on a pipe espeak-ng cannot go back to fill in the WAV sizes.
        with tempfile.TemporaryDirectory(prefix="espeak-") as folder:
            out = Path(folder) / "speech.wav"
            command = [self.binary, "-v", self.voice, "-s", str(self.words_per_minute)]
            result = subprocess.run(
                [*command, "-w", str(out), "--", sentence],
                capture_output=True,
                timeout=ESPEAK_SECONDS,
                check=False,
            )
            if result.returncode != 0 or not out.is_file():
                error = result.stderr.decode(errors="replace").strip()
                raise RuntimeError(
                    f"espeak-ng -v {self.voice} failed: {error or result.returncode}"
                )
            audio = read_wav(out.read_bytes())
        self.sample_rate = audio.sample_rate
        return audio

    def warm_up(self) -> None:
        """Fail at start-up, not on the first caller, when the voice does not exist."""
        self._speak("1")

    def iter_sentences(self, text: str) -> Iterator[Audio]:
        for item in parse_prompt(text):
            if isinstance(item, Pause):
                silence = np.zeros(round(self.sample_rate * item.ms / 1000), dtype=np.int16)
                if len(silence):
                    yield Audio(silence, self.sample_rate)
                continue
            audio = self._speak(item)
            if len(audio.samples):
                yield audio
