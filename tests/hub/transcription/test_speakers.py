"""The right channel's words go to whoever's leg was up; a dialog prompt is always the IVR's."""

from __future__ import annotations

from hub.transcription.speakers import LegWindow, ivr_prompts
from hub.transcription.worker import label_right_channel
from speech.asr import Segment, Word


def said(text: str, start: float, step: float = 0.4) -> Segment:
    words = tuple(
        Word(start + i * step, start + i * step + 0.3, w, 0.9) for i, w in enumerate(text.split())
    )
    return Segment(words[0].start, words[-1].end, text, None, words)


WINDOWS = [
    LegWindow("agent", 5.0, 20.0, agent_id=3, name="Alice Martin"),
    LegWindow("supervisor", 12.0, 14.0, agent_id=9, name="Sam Supervisor"),
    LegWindow("external", 20.0, float("inf")),
]
PROMPT = "Please hold while we connect you to the next agent."


def test_words_are_labelled_by_the_leg_up_when_they_were_said() -> None:
    labelled = label_right_channel(
        [
            said("Thank you for calling", 1.0),  # before any leg answered
            said("hello this is Alice how can I help", 5.5),
            said("I am listening in", 12.2),  # the supervisor barged in
            said("you are now connected to our partner", 20.5),
        ],
        WINDOWS,
        [],
    )
    assert [(s["speaker"], s["agent_id"]) for s in labelled] == [
        ("ivr", None),
        ("agent", 3),
        ("supervisor", 9),
        ("external", None),
    ]
    assert labelled[1]["agent_name"] == "Alice Martin"


def test_a_segment_crossing_the_agent_s_answer_is_split_there() -> None:
    labelled = label_right_channel([said("one two three four five six", 3.8)], WINDOWS, [])
    assert [(s["speaker"], s["text"]) for s in labelled] == [
        ("ivr", "one two three"),
        ("agent", "four five six"),
    ]


def test_an_ivr_prompt_never_counts_as_the_agent_s_words() -> None:
    trace = {"ivr": {"voice": {"prompts": [{"text": PROMPT}, {"text": ""}]}}}
    prompts = ivr_prompts(trace)
    assert prompts == [PROMPT]
    labelled = label_right_channel(
        [said("Please hold while we connect you to the next agent", 6.0)], WINDOWS, prompts
    )
    assert [(s["speaker"], s["agent_id"]) for s in labelled] == [("ivr", None)]
