"""TTS → ASR round trip: IVR prompts spoken by Piper and understood by faster-whisper.

Word error rate is reported (printed, and recorded as a test property) and asserted, both at
full band and after the 8 kHz G.711 μ-law round trip a phone line puts audio through.
"""

from __future__ import annotations

import numpy as np
import pytest

from speech.asr import WhisperRecognizer, looks_looped
from speech.audio import Audio, resample
from speech.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from speech.tts import Synthesizer
from speech.wer import word_error_rate, word_errors
from tests.speech.conftest import with_silence

# (prompt as the IVR would write it, what a listener hears)
IVR_SENTENCES: list[tuple[str, str]] = [
    ("Welcome to Contact Hub. Press one for sales, or two for support.", ""),
    ("Your account number is <digits>4 4 7 1 9 0 2</digits>.", "Your account number is 4471902."),
    ("Your current balance is 120 dollars.", ""),
    ("Please hold while I transfer you to Sarah Johnson.", ""),
    ("Hello Michael Brown, your appointment is confirmed for Tuesday.", ""),
    ("The total amount due is 45 dollars.", ""),
    ("Please say or enter your five digit zip code.", ""),
    ("Your confirmation code is <digits>8 3 5 2</digits>.", "Your confirmation code is 8352."),
    ("To speak with an agent, press zero.", ""),
    ("Thank you for calling. Goodbye.", ""),
]
# Seen: 0.04-0.07 on both (Piper's sampling noise varies the audio run to run).
MAX_WER_FULL_BAND = 0.15
MAX_WER_TELEPHONE = 0.18


@pytest.fixture(scope="module")
def spoken(synthesizer: Synthesizer) -> list[tuple[str, Audio]]:
    return [(heard or prompt, synthesizer.synthesize(prompt)) for prompt, heard in IVR_SENTENCES]


def _through_g711(audio: Audio, codec: str) -> Audio:
    narrow = resample(audio.samples, audio.sample_rate, 8000)
    if codec == "pcmu":
        return Audio(ulaw_decode(ulaw_encode(narrow)), 8000)
    return Audio(alaw_decode(alaw_encode(narrow)), 8000)


@pytest.mark.parametrize("line", ["full-band", "pcmu", "pcma"])
def test_ivr_prompts_survive_tts_then_asr(
    line: str,
    spoken: list[tuple[str, Audio]],
    recognizer: WhisperRecognizer,
    record_property: pytest.RecordProperty,
) -> None:
    pairs = []
    for reference, audio in spoken:
        heard = audio if line == "full-band" else _through_g711(audio, line)
        pairs.append((reference, recognizer.transcribe_utterance(heard).text))
    wer = word_error_rate(pairs)
    record_property(f"wer_{line}", round(wer, 3))
    print(f"\nWER {line}: {wer:.3f}")
    for reference, hypothesis in pairs:
        errors, words = word_errors(reference, hypothesis)
        if errors:
            print(f"  {errors}/{words}  {reference!r} → {hypothesis!r}")
    assert wer <= (MAX_WER_FULL_BAND if line == "full-band" else MAX_WER_TELEPHONE)


def test_digits_markup_is_heard_digit_by_digit(
    synthesizer: Synthesizer, recognizer: WhisperRecognizer
) -> None:
    said = recognizer.transcribe_utterance(
        synthesizer.synthesize("My PIN is <digits>5 0 9 3</digits>.")
    )
    assert word_errors("my pin is five zero nine three", said.text)[0] == 0, said.text


def test_hints_pick_the_expected_phrase(
    synthesizer: Synthesizer, recognizer: WhisperRecognizer
) -> None:
    menu = ["order status", "billing", "speak to an agent"]
    audio = with_silence(synthesizer.synthesize("I want to check my order status."), 0.3, 0.3)
    said = recognizer.transcribe_utterance(audio, hints=menu)
    assert said.hint == "order status"
    assert 0.0 < said.confidence <= 1.0
    said = recognizer.transcribe_utterance(synthesizer.synthesize("Billing, please."), menu)
    assert said.hint == "billing"


def test_a_short_answer_to_a_long_menu_is_heard_once(
    synthesizer: Synthesizer, recognizer: WhisperRecognizer
) -> None:
    """The hints are a prompt that CTranslate2 counts in its length limit: a half-second
    answer to a five-option menu once left no room to decode at all (an error), and then,
    with room, came back as "Billing. Billing."."""
    menu = ["Yes, please.", "No, thank you.", "Speak to an agent.", "Order status.", "Billing."]
    said = recognizer.transcribe_utterance(synthesizer.synthesize("Billing."), menu)
    assert said.hint == "Billing."
    assert not looks_looped(said.text, tokens=0, budget=100), said.text  # "Bill" is fine


def test_silence_and_noise_are_not_words(recognizer: WhisperRecognizer) -> None:
    silence = Audio(np.zeros(16000, dtype=np.int16), 16000)
    assert recognizer.transcribe_utterance(silence).text == ""
    hiss = np.random.default_rng(0).normal(0, 30, 16000)
    said = recognizer.transcribe_utterance(Audio(hiss.astype(np.int16), 16000), ["yes", "no"])
    assert said.hint is None


def test_short_menu_answers_do_not_loop(
    synthesizer: Synthesizer, recognizer: WhisperRecognizer
) -> None:
    """Whisper over a short window can repeat a phrase until its token budget runs out
    ("Press 2 for support. Press 2 for support. …"); each answer comes back once."""
    for said in ["Press one for sales.", "Press two for support.", "Repeat that.", "No."]:
        heard = recognizer.transcribe_utterance(synthesizer.synthesize(said)).text
        assert word_errors(said, heard)[0] <= 1, (said, heard)
