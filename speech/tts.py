"""Text to speech with Piper: sentence streaming, telephony frames and a prompt cache.

- The voice loads lazily, once per process per voice file, and is shared by every
  `Synthesizer` that names it.
- Synthesis runs one sentence at a time, so the first sentence can play while the rest is
  still being made; `stream_telephony` yields 20 ms G.711 frames (160 bytes at 8 kHz,
  ITU-T G.711) as soon as the first sentence is ready.
- Calls into Piper are serialized by one process-wide lock: its espeak-ng phonemizer keeps
  global state and is not thread-safe.
- The prompt cache is content-addressed: the key is a hash of the voice, the synthesis
  settings, the output format and the sentence, so a repeated prompt costs one file read
  and an edited voice or prompt can never serve stale audio.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from speech.audio import Audio, resample
from speech.g711 import alaw_encode, ulaw_encode
from speech.markup import Pause, parse_prompt
from speech.settings import SpeechSettings

if TYPE_CHECKING:
    from piper import PiperVoice

__all__ = ["FRAME_BYTES", "TELEPHONY_RATE", "Codec", "Synthesizer"]

Codec = Literal["pcmu", "pcma"]
TELEPHONY_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = TELEPHONY_RATE * FRAME_MS // 1000  # 160 bytes: one 20 ms G.711 RTP payload
_SILENCE_BYTE: dict[Codec, bytes] = {"pcmu": b"\xff", "pcma": b"\xd5"}
_ENCODERS = {"pcmu": ulaw_encode, "pcma": alaw_encode}

_SYNTHESIS_LOCK = threading.Lock()  # espeak-ng (Piper's phonemizer) is not thread-safe
_VOICES: dict[tuple[str, bool], PiperVoice] = {}
_VOICES_LOCK = threading.Lock()


def _load_voice(model: Path, config: Path, use_cuda: bool, threads: int) -> PiperVoice:
    key = (str(model.resolve()), use_cuda)
    with _VOICES_LOCK:
        voice = _VOICES.get(key)
        if voice is None:
            if not model.is_file() or not config.is_file():
                raise FileNotFoundError(f"Piper voice not found: {model} / {config}")
            voice = _open_voice(model, config, use_cuda, threads)
            _VOICES[key] = voice
        return voice


def _open_voice(model: Path, config: Path, use_cuda: bool, threads: int) -> PiperVoice:
    """Piper's voice with our own ONNX session: a fixed thread count and no spin-waiting.

    onnxruntime's default (one spinning thread per core) is fastest on an idle machine but
    collapses when the cores are shared with Whisper, RTP and other calls; measured on the
    shared 2-core box, spinning threads made synthesis 2-3x slower.
    """
    import onnxruntime
    from piper import PiperConfig, PiperVoice

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CUDAExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=providers)
    settings = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=settings)


class Synthesizer:
    """Piper speech for prompts: PCM at the voice's rate, or 8 kHz G.711 frames."""

    def __init__(
        self,
        voice: str | Path | None = None,
        config: str | Path | None = None,
        cache_dir: str | Path | None = None,
        device: str | None = None,
        length_scale: float | None = None,
        settings: SpeechSettings | None = None,
    ) -> None:
        settings = settings or SpeechSettings.from_env()
        if voice is None and settings.piper_voice is None:
            model_path, config_path = settings.resolved_piper_voice()
        else:
            model_path = Path(voice or settings.piper_voice)  # type: ignore[arg-type]
            config_path = Path(config or settings.piper_config or f"{model_path}.json")
        self.model_path, self.config_path = model_path, config_path
        cache = cache_dir if cache_dir is not None else settings.tts_cache_dir
        self.cache_dir = Path(cache) if cache is not None else None
        self.use_cuda = (device or settings.device) == "cuda"
        self.length_scale = length_scale
        self.variation = settings.tts_variation
        self.threads = settings.cpu_threads
        try:
            voice_config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(f"cannot read Piper voice config {config_path}: {exc}") from exc
        self.sample_rate = int(voice_config["audio"]["sample_rate"])
        if not model_path.is_file():
            raise FileNotFoundError(f"Piper voice model not found: {model_path}")
        stat = model_path.stat()
        # Identity of the voice for the cache: its file and size, and the config's content.
        self._voice_id = hashlib.sha256(
            f"{model_path.name}:{stat.st_size}:{config_path.read_bytes().hex()}".encode()
        ).hexdigest()[:16]

    @property
    def identity(self) -> str:
        """What makes this synthesizer's audio for a text: the voice and its settings. Caches
        of rendered prompts key on it, so another voice or speed never serves stale audio."""
        return json.dumps([self._voice_id, self.length_scale, self.variation])

    # -------------------------------------------------------------------------- model

    def load(self) -> PiperVoice:
        """The Piper voice, loaded on first use and shared across the process."""
        return _load_voice(self.model_path, self.config_path, self.use_cuda, self.threads)

    def warm_up(self) -> None:
        """Load the voice and synthesize once (bypassing the cache), before the first call."""
        voice = self.load()
        with _SYNTHESIS_LOCK:
            for _ in voice.synthesize("Hello."):
                pass

    # -------------------------------------------------------------------------- cache

    def _cache_path(self, sentence: str, fmt: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = json.dumps(
            [self._voice_id, self.length_scale, self.variation, fmt, sentence], ensure_ascii=False
        )
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.{fmt}"

    @staticmethod
    def _cache_read(path: Path | None) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    @staticmethod
    def _cache_write(path: Path | None, data: bytes) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)

    # -------------------------------------------------------------------------- PCM

    def _synthesize_sentence(self, sentence: str) -> npt.NDArray[np.int16]:
        path = self._cache_path(sentence, "pcm")
        cached = self._cache_read(path)
        if cached is not None:
            return np.frombuffer(cached, dtype=np.int16)
        from piper import SynthesisConfig

        voice = self.load()
        config = SynthesisConfig(length_scale=self.length_scale)
        if not self.variation:
            config.noise_scale = config.noise_w_scale = 0.0
        with _SYNTHESIS_LOCK:
            chunks = [chunk.audio_int16_array for chunk in voice.synthesize(sentence, config)]
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        self._cache_write(path, pcm.astype("<i2").tobytes())
        return pcm

    def iter_sentences(self, text: str) -> Iterator[Audio]:
        """Audio of each sentence (and each markup pause) in turn, at the voice's rate."""
        for item in parse_prompt(text):
            if isinstance(item, Pause):
                silence = np.zeros(round(self.sample_rate * item.ms / 1000), dtype=np.int16)
                if len(silence):
                    yield Audio(silence, self.sample_rate)
                continue
            pcm = self._synthesize_sentence(item)
            if len(pcm):
                yield Audio(pcm, self.sample_rate)

    def synthesize(self, text: str) -> Audio:
        """The whole prompt as one 16-bit PCM `Audio` at the voice's rate."""
        parts = [audio.samples for audio in self.iter_sentences(text)]
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        return Audio(samples, self.sample_rate)

    # -------------------------------------------------------------------------- telephony

    def _ready_telephony(self, item: str | Pause, codec: Codec) -> bytes | None:
        """The item's G.711 bytes if they cost nothing (a pause, or a cache hit)."""
        if isinstance(item, Pause):
            return _SILENCE_BYTE[codec] * round(TELEPHONY_RATE * item.ms / 1000)
        return self._cache_read(self._cache_path(item, codec))

    def _telephony_item(self, item: str | Pause, codec: Codec) -> bytes:
        ready = self._ready_telephony(item, codec)
        if ready is not None:
            return ready
        assert isinstance(item, str)
        pcm = self._synthesize_sentence(item)
        encoded = _ENCODERS[codec](resample(pcm, self.sample_rate, TELEPHONY_RATE))
        self._cache_write(self._cache_path(item, codec), encoded)
        return encoded

    @staticmethod
    def _check_codec(codec: str) -> None:
        if codec not in _ENCODERS:
            raise ValueError(f"codec must be 'pcmu' or 'pcma', not {codec!r}")

    @staticmethod
    def _split_frames(pending: bytes) -> tuple[list[bytes], bytes]:
        """(whole 20 ms frames, the remainder that waits for the next sentence)."""
        whole = len(pending) - len(pending) % FRAME_BYTES
        return [pending[i : i + FRAME_BYTES] for i in range(0, whole, FRAME_BYTES)], pending[whole:]

    @staticmethod
    def _last_frame(pending: bytes, codec: Codec) -> bytes:
        return pending + _SILENCE_BYTE[codec] * (FRAME_BYTES - len(pending))

    def iter_telephony(self, text: str, codec: Codec = "pcmu") -> Iterator[bytes]:
        """20 ms G.711 frames of the prompt at 8 kHz; the last one is padded with silence."""
        self._check_codec(codec)
        pending = b""
        for item in parse_prompt(text):
            frames, pending = self._split_frames(pending + self._telephony_item(item, codec))
            yield from frames
        if pending:
            yield self._last_frame(pending, codec)

    def telephony(self, text: str, codec: Codec = "pcmu") -> bytes:
        """The whole prompt as 8 kHz G.711 bytes (a whole number of 20 ms frames)."""
        return b"".join(self.iter_telephony(text, codec))

    async def stream_telephony(self, text: str, codec: Codec = "pcmu") -> AsyncIterator[bytes]:
        """`iter_telephony` for the event loop: each sentence not in the cache is made in a
        worker thread; cached sentences and pauses are served at once, with no thread hop."""
        self._check_codec(codec)
        pending = b""
        for item in parse_prompt(text):
            encoded = self._ready_telephony(item, codec)
            if encoded is None:
                encoded = await asyncio.to_thread(self._telephony_item, item, codec)
            frames, pending = self._split_frames(pending + encoded)
            for frame in frames:
                yield frame
        if pending:
            yield self._last_frame(pending, codec)
